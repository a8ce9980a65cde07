/**
 * `berth dev <stack> [--out DIR] [--production-like]`: the stack's backend services for a
 * developer's machine, as a Compose file (after the seeds' "single Vagrant image which contains
 * this minimal set of backend services").
 *
 * The services are read from the real program's registrations for the stack's first host (run
 * offline under mocks, as `berth plan` does), not from a second description: the same pinned
 * images, ports, environment, health checks, entrypoints and configuration files. What differs on
 * a laptop, on purpose:
 * - ports are published on 127.0.0.1 only (docker0's 172.17.0.1 is a CI-host convention);
 * - generated credentials (postgres, rabbitmq) are new random values kept in `DIR/.env` (0600,
 *   never in the Compose file), made once and kept on later runs;
 * - names are Compose service names in the project `berth-<stack>` (COMPOSE_PROJECT_NAME in .env).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { BerthConfig } from "../config/types.ts";
import { containersByHost, imageReferences } from "../plan/containers.ts";
import type { CapturedResource } from "../plan/mocks.ts";
import { plain, runStack, type StackRun } from "../plan/run.ts";
import { renderCompose, type ComposeNetwork, type ComposeService } from "../renderers/compose.ts";

export interface DevOptions {
  /** Also write the production-like set and dnsmasq, on a network of their own. */
  productionLike: boolean;
}

export interface DevEnvironment {
  input: { services: ComposeService[]; networks: ComposeNetwork[] };
  /** `.env` variables the Compose file needs: credentials to generate. */
  variables: string[];
  /** Files to write beside the Compose file (relative path → content). */
  files: Record<string, string>;
}

type Inputs = Record<string, unknown>;
const input = <T>(c: CapturedResource, key: string): T | undefined => plain(c.inputs[key]) as T | undefined;

/** `["K=V", …]` → entries (a value may itself hold `=`). */
function envEntries(c: CapturedResource): [string, string][] {
  const raw = plain(c.inputs.envs);
  const list = Array.isArray(raw) ? raw.map((e) => String(plain(e))) : [];
  return list.map((e) => {
    const i = e.indexOf("=");
    return i < 0 ? [e, ""] : [e.slice(0, i), e.slice(i + 1)];
  });
}

const variableName = (container: string, key: string) =>
  `BERTH_${container}_${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, "_");

/** Builds the Compose services from a program run (pure: no files touched). */
export function devEnvironment(run: StackRun, opts: DevOptions): DevEnvironment {
  const cfg: BerthConfig = run.config;
  const host = cfg.hosts.names[0];
  if (host === undefined) throw new Error("the stack has no host");
  const containers = containersByHost(run).get(host) ?? [];
  const imageOf = imageReferences(run);
  // Values the stack generates (random passwords): on a laptop, fresh ones from .env.
  const generated = new Set(
    run.resources
      .filter((r) => r.type === "random:index/randomPassword:RandomPassword")
      .map((r) => String(plain(r.state.result))),
  );
  const byName = new Map(containers.map((c) => [String(input<string>(c, "name")), c]));
  const wanted = [
    ...cfg.services.minimal,
    ...(opts.productionLike ? [DNSMASQ, ...cfg.services.productionLike.map((s) => s.name)] : []),
  ];
  const variables: string[] = [];
  const files: Record<string, string> = {};
  const networkNames = new Set<string>();

  const services = wanted.map<ComposeService>((name) => {
    const c = byName.get(name);
    if (!c) throw new Error(`the program registers no container ${name} on ${host}`);
    const environment: ComposeService["environment"] = {};
    for (const [k, v] of envEntries(c)) {
      if (generated.has(v)) {
        const variable = variableName(name, k);
        variables.push(variable);
        environment[k] = { variable };
      } else environment[k] = v;
    }
    const ports = (input<Inputs[]>(c, "ports") ?? [])
      .filter((p) => p.ip === "127.0.0.1")
      .map((p) => ({ host: "127.0.0.1", published: Number(p.external), target: Number(p.internal) }));
    const volumes = (input<Inputs[]>(c, "volumes") ?? []).map((v) => ({
      volume: String(plain(v.volumeName)),
      target: String(v.containerPath),
    }));
    const uploads = input<Inputs[]>(c, "uploads") ?? [];
    const mounted = uploads.map((u) => {
      const source = `files/${name}/${basename(String(u.file))}`;
      files[source] = String(plain(u.content));
      return { source, target: String(u.file) };
    });
    const advanced = (input<Inputs[]>(c, "networksAdvanced") ?? []).filter((n) => plain(n.name) !== "bridge");
    const net = advanced[0];
    if (net) networkNames.add(String(plain(net.name)));
    const hc = input<Inputs>(c, "healthcheck");
    const dns = input<string[]>(c, "dns");
    const dnsSearch = input<string[]>(c, "dnsSearches");
    const entrypoint = input<string[]>(c, "entrypoints");
    const command = input<string[]>(c, "command");
    const grace = input<number>(c, "destroyGraceSeconds");
    return {
      name,
      image: imageOf(c),
      ports,
      volumes,
      files: mounted,
      environment,
      ...(entrypoint ? { entrypoint } : {}),
      ...(command ? { command } : {}),
      ...(hc
        ? {
            healthcheck: {
              test: (hc.tests as string[]).map(String),
              interval: String(hc.interval),
              timeout: String(hc.timeout),
              retries: Number(hc.retries),
              startPeriod: String(hc.startPeriod),
            },
          }
        : {}),
      ...(net
        ? {
            network: {
              name: String(plain(net.name)),
              ...(net.ipv4Address ? { ipv4Address: String(net.ipv4Address) } : {}),
            },
          }
        : {}),
      ...(dns ? { dns } : {}),
      ...(dnsSearch ? { dnsSearch } : {}),
      ...(grace !== undefined ? { stopGraceSeconds: grace } : {}),
      ...(net && name !== DNSMASQ && opts.productionLike ? { dependsOn: [DNSMASQ] } : {}),
    };
  });

  const networks = [...networkNames].map<ComposeNetwork>((name) => {
    const n = run.resources.find(
      (r) => r.type === "docker:index/network:Network" && plain(r.inputs.name) === name,
    );
    const ipam = ((n && plain(n.inputs.ipamConfigs)) as Inputs[] | undefined)?.[0];
    if (!ipam) throw new Error(`the program registers no network ${name} with an address plan`);
    return {
      name,
      subnet: String(ipam.subnet),
      gateway: String(ipam.gateway),
      ...(ipam.ipRange ? { ipRange: String(ipam.ipRange) } : {}),
    };
  });
  return { input: { services, networks }, variables, files };
}

const DNSMASQ = "dnsmasq";

/** Reads `KEY=value` lines of an existing .env (comments and blank lines ignored). */
function readEnvFile(path: string): Map<string, string> {
  const values = new Map<string, string>();
  if (!existsSync(path)) return values;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) values.set(m[1], m[2]);
  }
  return values;
}

/** Writes `DIR/docker-compose.yml`, `DIR/.env` (0600) and the configuration files; returns their paths. */
export async function writeDevEnvironment(
  root: string,
  stack: string,
  outDir: string,
  opts: DevOptions,
): Promise<string[]> {
  const run = await runStack(root, stack);
  const dev = devEnvironment(run, opts);
  const compose = renderCompose(dev.input);
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const [rel, content] of Object.entries(dev.files)) {
    const path = join(outDir, rel);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, content);
    chmodSync(path, 0o644);
    written.push(path);
  }
  const composePath = join(outDir, "docker-compose.yml");
  writeFileSync(
    composePath,
    `# berth dev ${stack}${opts.productionLike ? " --production-like" : ""}: the services of ${run.config.hosts.names[0] ?? stack}, for a developer's machine.\n` +
      `# Run: docker compose up -d (or docker-compose up -d) in this directory. Credentials are in .env.\n` +
      compose,
  );
  chmodSync(composePath, 0o644);
  written.push(composePath);

  // .env: keep what a developer already has (their databases were initialised with it).
  const envPath = join(outDir, ".env");
  const values = readEnvFile(envPath);
  if (!values.has("COMPOSE_PROJECT_NAME")) values.set("COMPOSE_PROJECT_NAME", `berth-${stack}`);
  for (const v of dev.variables) if (!values.has(v)) values.set(v, randomBytes(24).toString("base64url"));
  const envText = [
    "# Written by berth dev: generated credentials for the services (keep this file private).",
    ...[...values].map(([k, v]) => `${k}=${v}`),
    "",
  ].join("\n");
  writeFileSync(envPath, envText, { mode: 0o600 });
  chmodSync(envPath, 0o600);
  written.push(envPath);
  return written;
}
