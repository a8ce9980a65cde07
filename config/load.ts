/**
 * From a stack's configuration to the typed `BerthConfig`: read `stacks/Pulumi.<stack>.yaml` (or
 * derive a `pr-<N>` preview stack from `testing`), validate, default, and derive names/addresses.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "./errors.ts";
import { validateRaw } from "./validate.ts";
import { cidrHost } from "./net.ts";
import type { BerthConfig, Environment, SecretValue, ServiceKind } from "./types.ts";

export const NAMESPACE = "berth";
/** Preview stacks: `pr-<N>`, derived from `testing`. */
export const PREVIEW_STACK = /^pr-([1-9][0-9]{0,6})$/;
const LONG_LIVED = ["testing", "staging", "production"] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export interface RawStackConfig {
  /** The `berth:*` values, keys without the namespace. */
  values: Obj;
  /** Where they came from, for messages. */
  source: string;
}

export function stackFile(root: string, stack: string): string {
  return join(root, "stacks", `Pulumi.${stack}.yaml`);
}

/** Splits a Pulumi config map (`berth:hosts` → value) into the `berth` namespace's values. */
export function berthValues(config: Obj): Obj {
  const out: Obj = {};
  for (const [key, value] of Object.entries(config)) {
    const i = key.indexOf(":");
    const ns = i < 0 ? NAMESPACE : key.slice(0, i);
    if (ns === NAMESPACE) out[i < 0 ? key : key.slice(i + 1)] = value;
  }
  return out;
}

/** Reads the `berth:*` values of a stack file. Throws ConfigError when it is missing or not YAML. */
export function readStackFile(root: string, stack: string): RawStackConfig {
  const file = stackFile(root, stack);
  const source = `stacks/Pulumi.${stack}.yaml`;
  if (!existsSync(file))
    throw new ConfigError(stack, source, [
      {
        path: "berth",
        message: `no such file; Berth stacks are ${LONG_LIVED.join(", ")} and pr-<N> (derived from testing), or any stack with its own stacks/Pulumi.<stack>.yaml`,
      },
    ]);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError(stack, source, [
      { path: "berth", message: `is not valid YAML: ${(e as Error).message}` },
    ]);
  }
  const config = isObj(doc) && isObj(doc.config) ? doc.config : {};
  return { values: berthValues(config), source };
}

/**
 * A preview stack's raw values: testing's, with a smaller footprint. Applied before validation,
 * so the derived stack is validated like any other.
 */
export function derivePreviewValues(testing: Obj): Obj {
  const v = structuredClone(testing);
  const hosts = isObj(v.hosts) ? v.hosts : (v.hosts = {});
  hosts.count = 1;
  hosts.protectData = false;
  if (typeof hosts.dockerVolumeSize !== "number" || hosts.dockerVolumeSize > 20) hosts.dockerVolumeSize = 20;
  const jenkins = isObj(v.jenkins) ? v.jenkins : (v.jenkins = {});
  if (typeof jenkins.agentsPerHost !== "number" || jenkins.agentsPerHost > 1) jenkins.agentsPerHost = 1;
  return v;
}

/** Reads a stack's raw values, deriving `pr-<N>` from testing when it has no file of its own. */
export function readStack(root: string, stack: string): RawStackConfig {
  if (PREVIEW_STACK.test(stack) && !existsSync(stackFile(root, stack)))
    return previewFromTesting(root, stack, {});
  return readStackFile(root, stack);
}

/** Whether a preview stack's own values are only overrides (it has no hosts/openstack of its own). */
export function needsDerivation(stack: string, own: Obj): boolean {
  return PREVIEW_STACK.test(stack) && !("openstack" in own) && !("hosts" in own);
}

/** A preview stack: testing's values with a smaller footprint, then the stack's own overrides. */
export function previewFromTesting(root: string, stack: string, own: Obj): RawStackConfig {
  const testing = readStackFile(root, "testing");
  return {
    values: { ...derivePreviewValues(testing.values), ...own },
    source: `${testing.source}, derived for ${stack}`,
  };
}

function environmentOf(stack: string): Environment {
  if (PREVIEW_STACK.test(stack)) return "preview";
  return (LONG_LIVED as readonly string[]).includes(stack) ? (stack as Environment) : "testing";
}

function secretValue(v: unknown): SecretValue {
  if (typeof v === "string") return { kind: "plain", value: v };
  const secure = isObj(v) ? v.secure : undefined;
  return { kind: "encrypted", ciphertext: String(secure) };
}

/** Validates raw values and builds the typed configuration. Throws one ConfigError on bad input. */
export function resolveConfig(stack: string, raw: RawStackConfig): BerthConfig {
  const d = validateRaw(stack, raw.source, raw.values) as {
    openstack: Obj & { networkCidr: string; dnsServers: string[] };
    hosts: Obj & { count: number };
    registry: Obj & { tls: Obj; users: Obj[]; pullThroughCache?: Obj };
    jenkins: Obj;
    services: Obj & { subnet: string; productionLike: Obj[] };
    dns: { searchDomain: string };
    extraIgnition: { path: string }[];
    previewTtlHours: number;
  };
  const environment = environmentOf(stack);
  const pr = PREVIEW_STACK.exec(stack)?.[1];
  const names = Array.from({ length: d.hosts.count }, (_, i) => `${stack}-ci-${i + 1}`);
  const addresses = names.map((_, i) => cidrHost(d.openstack.networkCidr, 11 + i));
  const labels: Record<string, string> = {
    "berth-stack": stack,
    "berth-environment": environment,
    "managed-by": "pulumi-berth",
  };
  if (pr !== undefined) {
    labels["berth-pr"] = pr;
    labels["berth-ttl-hours"] = String(d.previewTtlHours);
  }
  const tls = d.registry.tls;
  const o = d.openstack as unknown as BerthConfig["openstack"];
  const s = d.services as unknown as Omit<
    BerthConfig["services"],
    "gateway" | "dnsAddress" | "upstreamDns"
  > & {
    dnsAddress?: string;
    upstreamDns?: string[];
  };
  const cfg: BerthConfig = {
    stack,
    environment,
    labels,
    openstack: {
      ...o,
      floatingIpPool: o.floatingIpPool ?? o.externalNetwork,
    },
    hosts: {
      ...(d.hosts as unknown as Omit<BerthConfig["hosts"], "names" | "addresses">),
      names,
      addresses,
    },
    registry: {
      hostname: d.registry.hostname as string,
      tls:
        tls.mode === "provided"
          ? {
              mode: "provided",
              certificate: tls.certificate as string,
              privateKey: secretValue(tls.privateKey),
              ...(typeof tls.caCertificate === "string" ? { caCertificate: tls.caCertificate } : {}),
            }
          : {
              mode: "self-signed",
              validityDays: typeof tls.validityDays === "number" ? tls.validityDays : 365,
            },
      users: d.registry.users.map((u) => ({
        name: u.name as string,
        ...(u.password !== undefined ? { password: secretValue(u.password) } : {}),
      })),
      ...(d.registry.pullThroughCache
        ? {
            pullThroughCache: {
              remoteUrl: d.registry.pullThroughCache.remoteUrl as string,
              port: d.registry.pullThroughCache.port as number,
            },
          }
        : {}),
      image: d.registry.image as string,
      nginxImage: d.registry.nginxImage as string,
      host: names[0] as string,
      address: addresses[0] as string,
    },
    jenkins: d.jenkins as unknown as BerthConfig["jenkins"],
    services: {
      subnet: s.subnet,
      gateway: cidrHost(s.subnet, 1),
      dnsAddress: s.dnsAddress ?? cidrHost(s.subnet, 2),
      upstreamDns: s.upstreamDns ?? o.dnsServers,
      minimal: s.minimal as ServiceKind[],
      productionLike: s.productionLike,
      networkHolders: s.networkHolders,
    },
    dns: d.dns,
    extraIgnition: d.extraIgnition,
  };
  if (pr !== undefined) cfg.preview = { pr: Number(pr), ttlHours: d.previewTtlHours };
  return cfg;
}

/** `berth validate`, `berth render`, `berth plan` and tests: the typed config of a stack in `root`. */
export function loadStack(root: string, stack: string): BerthConfig {
  return resolveConfig(stack, readStack(root, stack));
}
