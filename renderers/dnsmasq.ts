/**
 * `dnsmasq.conf` for the backend-services DNS container: fixed A records for the service containers
 * (`<name>` and `<name>.<domain>` under every search domain), everything else in those domains
 * answered NXDOMAIN locally, other names forwarded to the configured upstream servers only.
 */
import { isIPv4 } from "node:net";
import {
  RenderError,
  checkHostname,
  checkIntRange,
  checkPath,
  checkPort,
  compareCodePoints,
  isDnsLabel,
  isIpAddress,
  joinLines,
} from "./common.ts";

const R = "renderDnsmasqConfig";

export interface DnsRecord {
  /** A single DNS label, e.g. `mongodb-cluster-a-node-1`. Unique (case-insensitively). */
  name: string;
  /** IPv4 address. */
  address: string;
}

export interface DnsmasqConfigInput {
  /**
   * Domains the records also live under, first preferred (e.g. one per production region:
   * `us-east-1.ci.internal`). Not empty, no repeats (ignoring case). Queries for unknown names in
   * them get NXDOMAIN.
   */
  searchDomains: readonly string[];
  /** Addresses dnsmasq answers on (`listen-address`). Not empty. */
  listenAddresses: readonly string[];
  /** Upstream resolvers (`server=`), `addr` or `addr#port`. Empty: nothing is forwarded. */
  upstreamServers: readonly string[];
  records: readonly DnsRecord[];
  /** Bind only the listen addresses (`bind-interfaces`) instead of the wildcard. Default true. */
  bindInterfaces?: boolean;
  /** DNS port. Default 53 (not written). */
  port?: number;
  /** Entries in the answer cache. Default 1000. */
  cacheSize?: number;
  /** Log every query (`log-queries`). Default false. */
  logQueries?: boolean;
  /** Path or `-` (stderr, with `--keep-in-foreground`/`--no-daemon`). Default: dnsmasq's (syslog). */
  logFacility?: string;
  /** `pid-file`. Default: dnsmasq's built-in. */
  pidFile?: string;
  /** User to drop privileges to (`user=`). Default: dnsmasq's built-in (`nobody`). */
  user?: string;
}

function checkServer(value: string): string {
  const hash = value.indexOf("#");
  const addr = hash < 0 ? value : value.slice(0, hash);
  const port = hash < 0 ? undefined : value.slice(hash + 1);
  if (
    !isIpAddress(addr) ||
    (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535))
  ) {
    throw new RenderError(
      R,
      "upstreamServers",
      `${JSON.stringify(value)} must be an IP address, optionally #port`,
    );
  }
  return value;
}

/** Validated records in output order (by name, code-point order). */
export function sortedDnsRecords(records: readonly DnsRecord[]): DnsRecord[] {
  const seen = new Map<string, DnsRecord>();
  for (const record of records) {
    const label = `record ${JSON.stringify(record.name)}`;
    if (!isDnsLabel(record.name)) {
      throw new RenderError(R, "records", `${label}: the name must be one DNS label (letters, digits, -)`);
    }
    if (!isIPv4(record.address)) {
      throw new RenderError(
        R,
        "records",
        `${label}: ${JSON.stringify(record.address)} is not an IPv4 address`,
      );
    }
    const key = record.name.toLowerCase();
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new RenderError(R, "records", `${label}: duplicate name (also ${JSON.stringify(earlier.name)})`);
    }
    seen.set(key, record);
  }
  return [...seen.values()].sort((a, b) => compareCodePoints(a.name.toLowerCase(), b.name.toLowerCase()));
}

/** Renders dnsmasq.conf. Deterministic: record order in the input does not matter. */
export function renderDnsmasqConfig(input: DnsmasqConfigInput): string {
  if (input.searchDomains.length === 0) throw new RenderError(R, "searchDomains", "must not be empty");
  const domains: string[] = [];
  for (const d of input.searchDomains) {
    const domain = checkHostname(R, "searchDomains", d).toLowerCase();
    if (domains.includes(domain))
      throw new RenderError(
        R,
        "searchDomains",
        `${JSON.stringify(d)} is listed twice (DNS names ignore case)`,
      );
    domains.push(domain);
  }
  if (input.listenAddresses.length === 0) throw new RenderError(R, "listenAddresses", "must not be empty");
  for (const a of input.listenAddresses) {
    if (!isIpAddress(a))
      throw new RenderError(R, "listenAddresses", `${JSON.stringify(a)} is not an IP address`);
  }
  input.upstreamServers.forEach(checkServer);
  const records = sortedDnsRecords(input.records);
  const cacheSize = checkIntRange(R, "cacheSize", input.cacheSize ?? 1000, 0, 100000);
  if (input.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(input.user)) {
    throw new RenderError(R, "user", `${JSON.stringify(input.user)} is not a user name`);
  }

  const lines = ["# Rendered by Berth (renderers/dnsmasq.ts)."];
  if (input.port !== undefined) lines.push(`port=${checkPort(R, "port", input.port)}`);
  if (input.user !== undefined) lines.push(`user=${input.user}`);
  if (input.pidFile !== undefined) lines.push(`pid-file=${checkPath(R, "pidFile", input.pidFile)}`);
  for (const a of input.listenAddresses) lines.push(`listen-address=${a}`);
  if (input.bindInterfaces ?? true) lines.push("bind-interfaces");
  lines.push(
    "",
    "# Resolvers: only the ones below, never /etc/resolv.conf or /etc/hosts.",
    "no-resolv",
    "no-hosts",
    "domain-needed",
    "bogus-priv",
    ...input.upstreamServers.map((s) => `server=${s}`),
    `cache-size=${cacheSize}`,
  );
  if (input.logQueries === true) lines.push("log-queries");
  if (input.logFacility !== undefined) {
    const f = input.logFacility === "-" ? "-" : checkPath(R, "logFacility", input.logFacility);
    lines.push(`log-facility=${f}`);
  }
  lines.push(
    "",
    `# Names under ${domains.join(", ")} are answered here only.`,
    `domain=${domains[0] ?? ""}`,
    ...domains.map((d) => `local=/${d}/`),
    "",
    ...records.map(
      (r) => `host-record=${[r.name, ...domains.map((d) => `${r.name}.${d}`)].join(",")},${r.address}`,
    ),
  );
  return joinLines(lines);
}
