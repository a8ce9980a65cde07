/** Small IPv4 helpers for validation and address derivation (pure). */

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

/** The n-th address of a CIDR (0 is the network address). */
export function cidrHost(c: string, n: number): string {
  const p = parseCidr(c);
  if (!p || n < 0 || n >= p.size) throw new Error(`address #${n} is outside ${c}`);
  return formatIpv4(p.network + n);
}

/**
 * The range a `ci-services` network hands out to containers that ask for no address (agents,
 * network holders, per-build containers): the upper half of the subnet, as `ipRange` of its IPAM
 * configuration (components/services.ts `checkServiceAddresses`). Fixed addresses (gateway, dnsmasq,
 * production-like services) live below it. Docker's IPAM reserves the subnet's network and broadcast
 * addresses; the broadcast address is the last of this range, so `room` is its size less one.
 */
export function servicesDynamicRange(subnet: Cidr): Cidr & { room: number } {
  const size = subnet.size / 2;
  return { network: subnet.network + size, prefix: subnet.prefix + 1, size, room: size - 1 };
}
