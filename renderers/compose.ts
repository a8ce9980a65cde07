/**
 * A Compose file (format 2.4: Debian's docker-compose 1.29 and Compose v2 both read it) for a
 * developer's machine: the services a CI host runs, as plain data in, YAML out.
 */
import { stringify } from "yaml";
import { RenderError } from "./common.ts";

export interface ComposeHealthcheck {
  /** Docker's form: `["CMD", …]` or `["CMD-SHELL", "…"]`. */
  test: string[];
  interval: string;
  timeout: string;
  retries: number;
  startPeriod: string;
}

export interface ComposeService {
  /** Service key, container hostname. */
  name: string;
  /** Pinned image reference. */
  image: string;
  /** Published ports: `host` address, `published` on it, `target` in the container (TCP). */
  ports: { host: string; published: number; target: number }[];
  /** Named volumes. */
  volumes: { volume: string; target: string }[];
  /** Read-only bind mounts of files written beside the Compose file (`source` relative to it). */
  files: { source: string; target: string }[];
  /**
   * Environment: a literal value, or `{ variable }` for a value read from the `.env` file beside
   * the Compose file (credentials, never written into the Compose file itself).
   */
  environment: Record<string, string | { variable: string }>;
  entrypoint?: string[];
  command?: string[];
  healthcheck?: ComposeHealthcheck;
  /** A user-defined network and, optionally, the fixed address on it. Default: Compose's own network. */
  network?: { name: string; ipv4Address?: string };
  dns?: string[];
  dnsSearch?: string[];
  /** Seconds `docker stop` waits before killing. */
  stopGraceSeconds?: number;
  dependsOn?: string[];
}

export interface ComposeNetwork {
  name: string;
  subnet: string;
  gateway: string;
  /** Range for containers without a fixed address. */
  ipRange?: string;
}

export interface ComposeInput {
  services: ComposeService[];
  networks: ComposeNetwork[];
}

/** Compose interpolates `$`: a literal dollar is written `$$`. */
const literal = (s: string) => s.replaceAll("$", () => "$$");

const NAME = /^[a-z0-9][a-z0-9_.-]*$/;
const VARIABLE = /^[A-Z_][A-Z0-9_]*$/;

function check(input: ComposeInput): void {
  const problems: string[] = [];
  const names = new Set<string>();
  const networks = new Set(input.networks.map((n) => n.name));
  const published = new Map<string, string>();
  for (const s of input.services) {
    if (!NAME.test(s.name))
      problems.push(`service name ${JSON.stringify(s.name)} is not a valid Compose name`);
    if (names.has(s.name)) problems.push(`service ${s.name} is defined twice`);
    names.add(s.name);
    if (s.network && !networks.has(s.network.name))
      problems.push(`service ${s.name}: network ${s.network.name} is not defined`);
    for (const p of s.ports) {
      const key = `${p.host}:${p.published}`;
      const other = published.get(key);
      if (other) problems.push(`services ${other} and ${s.name} both publish ${key}`);
      published.set(key, s.name);
    }
    for (const v of Object.values(s.environment))
      if (typeof v !== "string" && !VARIABLE.test(v.variable))
        problems.push(`service ${s.name}: ${JSON.stringify(v.variable)} is not an environment variable name`);
  }
  for (const s of input.services)
    for (const d of s.dependsOn ?? [])
      if (!names.has(d)) problems.push(`service ${s.name} depends on ${d}, which is not defined`);
  if (problems.length > 0) throw new RenderError("compose", "services", problems.join("; "));
}

function service(s: ComposeService): Record<string, unknown> {
  const out: Record<string, unknown> = { image: s.image, hostname: s.name, restart: "unless-stopped" };
  if (s.entrypoint) out.entrypoint = s.entrypoint.map(literal);
  if (s.command) out.command = s.command.map(literal);
  const env = Object.entries(s.environment);
  if (env.length > 0)
    out.environment = Object.fromEntries(
      env.map(([k, v]) => [
        k,
        typeof v === "string"
          ? literal(v)
          : `\${${v.variable}:?run berth dev again: .env lacks ${v.variable}}`,
      ]),
    );
  if (s.ports.length > 0) out.ports = s.ports.map((p) => `${p.host}:${p.published}:${p.target}`);
  const mounts = [
    ...s.volumes.map((v) => `${v.volume}:${v.target}`),
    ...s.files.map((f) => `./${f.source}:${f.target}:ro`),
  ];
  if (mounts.length > 0) out.volumes = mounts;
  if (s.network)
    out.networks = {
      [s.network.name]: s.network.ipv4Address ? { ipv4_address: s.network.ipv4Address } : {},
    };
  if (s.dns) out.dns = s.dns;
  if (s.dnsSearch) out.dns_search = s.dnsSearch;
  if (s.healthcheck)
    out.healthcheck = {
      test: s.healthcheck.test.map(literal),
      interval: s.healthcheck.interval,
      timeout: s.healthcheck.timeout,
      retries: s.healthcheck.retries,
      start_period: s.healthcheck.startPeriod,
    };
  if (s.stopGraceSeconds !== undefined) out.stop_grace_period = `${s.stopGraceSeconds}s`;
  if (s.dependsOn && s.dependsOn.length > 0) out.depends_on = s.dependsOn;
  return out;
}

/** The Compose file. Throws a RenderError naming every inconsistency (duplicate names, ports, …). */
export function renderCompose(input: ComposeInput): string {
  check(input);
  const volumes = [...new Set(input.services.flatMap((s) => s.volumes.map((v) => v.volume)))].sort();
  const doc: Record<string, unknown> = {
    version: "2.4",
    services: Object.fromEntries(input.services.map((s) => [s.name, service(s)])),
  };
  if (volumes.length > 0) doc.volumes = Object.fromEntries(volumes.map((v) => [v, {}]));
  if (input.networks.length > 0)
    doc.networks = Object.fromEntries(
      input.networks.map((n) => [
        n.name,
        {
          driver: "bridge",
          ipam: {
            config: [{ subnet: n.subnet, gateway: n.gateway, ...(n.ipRange ? { ip_range: n.ipRange } : {}) }],
          },
        },
      ]),
    );
  return stringify(doc, { lineWidth: 0 });
}
