/**
 * Address arithmetic (pure): IPv4 parsing and CIDRs for the address plan (config/addresses.ts), and
 * address-space unions for judging how open a set of rules is (validation and the policy pack).
 *
 * No imports: Pulumi's policy runner loads this file too (ts-node, CommonJS, from policy/).
 */

export function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || String(p) !== m[i + 1])) return undefined;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

export interface Cidr {
  network: number;
  prefix: number;
  size: number;
}

/** Parses `a.b.c.d/n`; `undefined` when malformed. `hostBits` is true when bits past the prefix are set. */
export function parseCidr(s: string): (Cidr & { hostBits: boolean }) | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  const ip = parseIpv4(m[1]);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32 || String(prefix) !== m[2]) return undefined;
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ip / size) * size;
  return { network, prefix, size, hostBits: network !== ip };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.network && ip < c.network + c.size;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.network < b.network + b.size && b.network < a.network + a.size;
}

// --- address space: unions and exposure ----------------------------------------------------------

/** An inclusive range of addresses of one family (IPv4 or IPv6), as big integers. */
export interface AddressRange {
  family: 4 | 6;
  first: bigint;
  last: bigint;
}

function parseIpv6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.split("::").length > 2) return undefined;
  const [head = "", tail] = s.split("::");
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (const [i, g] of items.entries()) {
      if (i === items.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  if (!h || !t) return undefined;
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  return [...h, ...Array<number>(tail === undefined ? 0 : missing).fill(0), ...t].reduce(
    (acc, g) => acc * 65536n + BigInt(g),
    0n,
  );
}

/**
 * The addresses a source prefix of a rule covers: an IPv4 or IPv6 CIDR, or a bare address (a
 * single host). Host bits are ignored, as Neutron does. `undefined` when malformed.
 */
export function addressRange(prefix: string): AddressRange | undefined {
  const [addr = "", len, ...rest] = prefix.trim().split("/");
  if (rest.length > 0) return undefined;
  const family = addr.includes(":") ? 6 : 4;
  const bits = family === 4 ? 32 : 128;
  const ip = family === 4 ? parseIpv4(addr) : parseIpv6(addr);
  const n = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (ip === undefined || !(n >= 0 && n <= bits)) return undefined;
  const size = 1n << BigInt(bits - n);
  const first = (BigInt(ip) / size) * size;
  return { family, first, last: first + size - 1n };
}

/** Sorted, merged ranges covering exactly the union of `ranges` (per family). */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort((a, b) =>
    a.family !== b.family ? a.family - b.family : a.first < b.first ? -1 : a.first > b.first ? 1 : 0,
  );
  const out: AddressRange[] = [];
  for (const r of sorted) {
    const prev = out.at(-1);
    if (prev && prev.family === r.family && r.first <= prev.last + 1n) {
      if (r.last > prev.last) prev.last = r.last;
    } else out.push({ ...r });
  }
  return out;
}

/** How many addresses of `ranges` also lie in `within` (both are merged first). */
function overlapCount(ranges: readonly AddressRange[], within: readonly AddressRange[]): bigint {
  let total = 0n;
  for (const r of mergeRanges(ranges))
    for (const w of mergeRanges(within)) {
      if (w.family !== r.family) continue;
      const first = r.first > w.first ? r.first : w.first;
      const last = r.last < w.last ? r.last : w.last;
      if (first <= last) total += last - first + 1n;
    }
  return total;
}

/**
 * IPv4 space that is not reachable from the Internet (RFC 6890 "not globally reachable"): "this
 * network", private networks (RFC 1918), shared/CGNAT space, loopback, link-local, the IETF block,
 * benchmarking, multicast and the reserved block up to the broadcast address.
 */
export const NON_PUBLIC_IPV4: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/4",
  "240.0.0.0/4",
];
/** IPv6's global unicast space (2000::/3): everything else is local, link-local or multicast. */
export const PUBLIC_IPV6 = "2000::/3";

/**
 * The most public address space one set of rules (all the sources of the same ports) may open
 * without `berth:openstack.allowWorld`: a /16's worth of IPv4 addresses (65,536), a /32's worth of
 * IPv6 global unicast space (an ISP's allocation). More is the Internet in pieces: an office, VPN,
 * bastion or Jenkins controller is a few addresses; a whole provider's range is anyone renting there.
 */
export const WORLD_THRESHOLD = { ipv4: 2n ** 16n, ipv6: 2n ** 96n } as const;

export interface Exposure {
  /** Addresses the sources cover in total (duplicates and overlaps counted once). */
  total: bigint;
  /** Of these, publicly routable IPv4 addresses. */
  publicIpv4: bigint;
  /** Of these, IPv6 global unicast addresses. */
  publicIpv6: bigint;
  /** More public space than {@link WORLD_THRESHOLD}: the rule set is open to the world. */
  world: boolean;
  /** Sources that could not be parsed (ignored in the totals). */
  malformed: string[];
}

/** Judges how open a set of sources is, by the union of the address space they cover. */
export function exposureOf(sources: readonly string[]): Exposure {
  const ranges: AddressRange[] = [];
  const malformed: string[] = [];
  for (const s of sources) {
    const r = addressRange(s);
    if (r) ranges.push(r);
    else malformed.push(s);
  }
  const merged = mergeRanges(ranges);
  const v4 = merged.filter((r) => r.family === 4);
  const v6 = merged.filter((r) => r.family === 6);
  const size = (rs: AddressRange[]) => rs.reduce((acc, r) => acc + (r.last - r.first + 1n), 0n);
  const nonPublic = NON_PUBLIC_IPV4.map((c) => addressRange(c) as AddressRange);
  const publicIpv4 = size(v4) - overlapCount(v4, nonPublic);
  const publicIpv6 = overlapCount(v6, [addressRange(PUBLIC_IPV6) as AddressRange]);
  return {
    total: size(merged),
    publicIpv4,
    publicIpv6,
    world: publicIpv4 > WORLD_THRESHOLD.ipv4 || publicIpv6 > WORLD_THRESHOLD.ipv6,
    malformed,
  };
}

/** `1234567` → `1,234,567`. */
export function formatCount(n: bigint): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
