/**
 * From a stack's configuration to the typed `BerthConfig`: read `stacks/Pulumi.<stack>.yaml` (or
 * derive a `pr-<N>` preview stack from `testing`), validate, default, and derive names/addresses.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, internalError, type ConfigIssue } from "./errors.ts";
import { validateRaw } from "./validate.ts";
import { fragmentPathProblem, namespaceIssues } from "./validate-input.ts";
import { ciNetworkPlan, servicesPlan } from "./addresses.ts";
import { updatesIssues } from "./validate-updates.ts";
import { registryUpkeepIssues } from "./validate-registry-upkeep.ts";
import { limitsInputOf } from "./validate-limits.ts";
import { resolveLimits } from "./limits.ts";
import { logsIssues } from "./validate-logs.ts";
import { resolveProductionLike, restoreIssues } from "./validate-restore.ts";
import { IMAGE_DIGEST_PATTERN } from "./images.ts";
import { FORMAT_HINTS } from "./schema.ts";
import { PROJECT_ROOT } from "./root.ts";
import { IGNITION_SPEC_VERSION, type IgnitionConfig } from "../ignition/model.ts";
import type {
  BerthConfig,
  BerthValidated,
  Environment,
  ExtraIgnition,
  PerBuildConfig,
  RegistryTls,
  SecretValue,
} from "./types.ts";
import { isObj, type Obj } from "./raw.ts";

export const NAMESPACE = "berth";
/** Preview stacks: `pr-<N>`, derived from `testing`. */
export const PREVIEW_STACK = /^pr-([1-9][0-9]{0,6})$/;
const LONG_LIVED = ["testing", "staging", "production"] as const;

export interface RawStackConfig {
  /** The `berth:*` values, keys without the namespace. */
  values: Obj;
  /** Where they came from, for messages. */
  source: string;
  /** Problems found outside the `berth:*` values (namespace typos), reported with theirs. */
  issues?: ConfigIssue[];
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
  return { values: berthValues(config), source, issues: namespaceIssues(config, NAMESPACE) };
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
  // Host names carry the stack name: testing's list of per-build hosts names none of the preview's.
  if (isObj(jenkins.perBuild)) delete jenkins.perBuild.hosts;
  return v;
}

/** Reads a stack's raw values, deriving `pr-<N>` from testing when it has no file of its own. */
export function readStack(root: string, stack: string): RawStackConfig {
  if (PREVIEW_STACK.test(stack) && !existsSync(stackFile(root, stack)))
    return previewFromTesting(root, stack, {});
  const own = readStackFile(root, stack);
  // A preview stack's file with only overrides (or only the `encryptionsalt` that
  // `pulumi stack init` writes) applies them on top of testing, like `pulumi up` does.
  return needsDerivation(stack, own.values) ? previewFromTesting(root, stack, own.values, own) : own;
}

/** Top-level keys a stack needs (the schema's `required`); a preview stack lacking one derives from testing. */
const COMPLETE_STACK_KEYS = ["openstack", "hosts", "registry", "jenkins", "dns"] as const;

/**
 * Whether a preview stack's own values are only overrides: it lacks one of the keys a stack needs,
 * so it takes testing's values and applies its own on top.
 */
export function needsDerivation(stack: string, own: Obj): boolean {
  return PREVIEW_STACK.test(stack) && COMPLETE_STACK_KEYS.some((k) => !(k in own));
}

/**
 * Overrides on top of derived values: maps merge key by key (so `pulumi config set --path
 * berth:jenkins.agentsPerHost 1` changes that one key), lists and scalars replace.
 */
function overlay(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return structuredClone(over);
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? overlay(base[k], v) : structuredClone(v);
  return out;
}

/** A preview stack: testing's values with a smaller footprint, then the stack's own overrides. */
export function previewFromTesting(
  root: string,
  stack: string,
  own: Obj,
  ownFile?: RawStackConfig,
): RawStackConfig {
  const testing = readStackFile(root, "testing");
  return {
    values: overlay(derivePreviewValues(testing.values), own) as Obj,
    source: ownFile
      ? `${testing.source}, derived for ${stack} with ${ownFile.source}`
      : `${testing.source}, derived for ${stack}`,
    issues: [...(testing.issues ?? []), ...(ownFile?.issues ?? [])],
  };
}

function environmentOf(stack: string): Environment {
  if (PREVIEW_STACK.test(stack)) return "preview";
  return (LONG_LIVED as readonly string[]).includes(stack) ? (stack as Environment) : "testing";
}

/** A secret as the schema accepts it: a plain string, or `{ secure: <ciphertext> }`. */
function secretValue(v: string | { secure: string }): SecretValue {
  return typeof v === "string" ? { kind: "plain", value: v } : { kind: "encrypted", ciphertext: v.secure };
}

/** The registry's TLS settings, with the private key as a secret value; keys in a fixed order. */
function registryTls(tls: BerthValidated["registry"]["tls"]): RegistryTls {
  return tls.mode === "provided"
    ? {
        mode: "provided",
        certificate: tls.certificate,
        privateKey: secretValue(tls.privateKey),
        ...(tls.caCertificate !== undefined ? { caCertificate: tls.caCertificate } : {}),
      }
    : { mode: "self-signed", validityDays: tls.validityDays };
}

/** The per-build agent image the stack builds itself (images/jenkins-agent), in its own registry. */
export const AGENT_IMAGE_REPOSITORY = "berth/jenkins-agent";
/** Overrides the git revision as the tag of the stack's own agent image. */
export const AGENT_IMAGE_TAG_ENV = "BERTH_AGENT_IMAGE_TAG";

export interface ResolveOptions {
  /**
   * Tag of `<registry>/berth/jenkins-agent` (perBuild.image "registry"). Default: $BERTH_AGENT_IMAGE_TAG,
   * else the git revision (`git rev-parse HEAD`) of the project, which is what
   * images/jenkins-agent/build-and-push.sh tags and pushes in the deploy workflow.
   */
  agentImageTag?: string;
  /** Directory `berth:extraIgnition` paths are relative to (default: the project root). */
  root?: string;
}

/** The git revision of the checkout at `root`, or undefined outside a git checkout. */
export function gitRevision(root: string = PROJECT_ROOT): string | undefined {
  const r = spawnSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8", timeout: 10_000 });
  const rev = r.status === 0 ? r.stdout.trim() : "";
  return /^[0-9a-f]{40,64}$/.test(rev) ? rev : undefined;
}

const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Cross-field checks of `berth:jenkins.perBuild` (they need the derived host names). Defensive:
 * runs on raw values that may also have schema errors, so every problem is reported together.
 */
export function perBuildIssues(stack: string, raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const jenkins = isObj(raw.jenkins) ? raw.jenkins : {};
  const perBuild = isObj(jenkins.perBuild) ? jenkins.perBuild : undefined;
  if (!perBuild) return issues;
  const hosts = isObj(raw.hosts) ? raw.hosts : {};
  if (perBuild.enabled === true && hosts.dockerTls === false)
    issues.push({
      path: "berth:jenkins.perBuild.enabled",
      message:
        "per-build agents reach dockerd over mutual TLS, but berth:hosts.dockerTls is false; set berth:hosts.dockerTls: true (it changes every host's Ignition and so replaces every host) or berth:jenkins.perBuild.enabled: false",
    });
  const count = hosts.count;
  if (Array.isArray(perBuild.hosts) && typeof count === "number" && Number.isInteger(count) && count >= 1) {
    const names = Array.from({ length: count }, (_, i) => `${stack}-ci-${i + 1}`);
    perBuild.hosts.forEach((h, i) => {
      if (typeof h === "string" && h !== "" && !names.includes(h))
        issues.push({
          path: `berth:jenkins.perBuild.hosts[${i}]`,
          message: `"${h}" is not a host of stack ${stack}; its hosts are ${names.join(", ")}`,
        });
    });
  }
  const image = perBuild.image;
  if (typeof image === "string" && image !== "" && image !== "registry" && !IMAGE_DIGEST_PATTERN.test(image))
    issues.push({
      path: "berth:jenkins.perBuild.image",
      message: `must be "registry" (the stack's own images/jenkins-agent build) or ${FORMAT_HINTS["image-digest"]}, got ${JSON.stringify(image)}`,
    });
  return issues;
}

/**
 * Cross-field checks of `berth:jenkins.dockerAccess` (and the key it replaced). Defensive like
 * {@link perBuildIssues}.
 */
export function dockerAccessIssues(raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const jenkins = isObj(raw.jenkins) ? raw.jenkins : {};
  const hosts = isObj(raw.hosts) ? raw.hosts : {};
  if (jenkins.dockerSocket !== undefined)
    issues.push({
      path: "berth:jenkins.dockerSocket",
      message:
        'was replaced by berth:jenkins.dockerAccess.static: "socket" (for true) or "none" (for false); rename the key',
    });
  const access = isObj(jenkins.dockerAccess) ? jenkins.dockerAccess : {};
  for (const kind of ["static", "perBuild"] as const) {
    if (access[kind] === "tls" && hosts.dockerTls === false)
      issues.push({
        path: `berth:jenkins.dockerAccess.${kind}`,
        message:
          '"tls" reaches the host\'s dockerd over mutual TLS, but berth:hosts.dockerTls is false; set berth:hosts.dockerTls: true (it replaces every host) or choose "socket" or "none"',
      });
  }
  return issues;
}

/** Schema validation plus the per-build checks, reported as one ConfigError. */
function validateAll(stack: string, raw: RawStackConfig, root: string): BerthValidated {
  const extra = [
    ...restoreIssues(raw.values, root),
    ...perBuildIssues(stack, raw.values),
    ...dockerAccessIssues(raw.values),
    ...updatesIssues(stack, raw.values),
    ...registryUpkeepIssues(stack, raw.values),
    ...logsIssues(raw.values),
    ...(raw.issues ?? []),
  ];
  let d: BerthValidated;
  try {
    d = validateRaw(stack, raw.source, raw.values);
  } catch (e) {
    if (e instanceof ConfigError && extra.length > 0)
      throw new ConfigError(stack, raw.source, [...e.issues, ...extra]);
    throw e;
  }
  if (extra.length > 0) throw new ConfigError(stack, raw.source, extra);
  return d;
}

function resolvePerBuild(
  stack: string,
  source: string,
  p: BerthValidated["jenkins"]["perBuild"],
  names: string[],
  registryHostname: string,
  options: ResolveOptions,
): PerBuildConfig {
  const enabled = p.enabled;
  const configured = p.image;
  const prefix = p.credentialsIdPrefix ?? stack;
  let image = configured;
  if (configured === "registry") {
    const tag =
      options.agentImageTag ?? process.env[AGENT_IMAGE_TAG_ENV] ?? (enabled ? gitRevision() : "unknown");
    if (tag === undefined || !TAG_PATTERN.test(tag))
      throw new ConfigError(stack, source, [
        {
          path: "berth:jenkins.perBuild.image",
          message: `is "registry", whose tag is the git revision, but ${tag === undefined ? "this is not a git checkout" : `${JSON.stringify(tag)} is not a valid image tag`}; run from the checkout or set ${AGENT_IMAGE_TAG_ENV}`,
        },
      ]);
    image = `${registryHostname}/${AGENT_IMAGE_REPOSITORY}:${tag}`;
  }
  const listed = p.hosts ?? names;
  return {
    enabled,
    hosts: names.filter((n) => listed.includes(n)),
    instanceCap: p.instanceCap,
    labels: p.labels,
    image,
    imageSource: configured === "registry" ? "registry" : "pinned",
    pullStrategy: p.pullStrategy,
    dockerCredentialsId: `${prefix}-dockerd-tls`,
    registryCredentialsId: `${prefix}-registry`,
  };
}

/** Validates raw values and builds the typed configuration. Throws one ConfigError on bad input. */
export function resolveConfig(stack: string, raw: RawStackConfig, options: ResolveOptions = {}): BerthConfig {
  const d = validateAll(stack, raw, options.root ?? PROJECT_ROOT);
  const environment = environmentOf(stack);
  const pr = PREVIEW_STACK.exec(stack)?.[1];
  const names = Array.from({ length: d.hosts.count }, (_, i) => `${stack}-ci-${i + 1}`);
  const addresses = ciNetworkPlan(d.openstack.networkCidr, d.hosts.count).hosts;
  const labels: Record<string, string> = {
    "berth-stack": stack,
    "berth-environment": environment,
    "managed-by": "pulumi-berth",
  };
  if (pr !== undefined) {
    labels["berth-pr"] = pr;
    labels["berth-ttl-hours"] = String(d.previewTtlHours);
  }
  const o = d.openstack;
  const s = d.services;
  const servicesAddresses = servicesPlan(s.subnet, s.dnsAddress);
  // Validation refused a stack whose limits cannot be computed; this is a bug check.
  const limitsInput = limitsInputOf(stack, d);
  if (limitsInput === undefined || !("size" in limitsInput))
    throw internalError(`the limits of stack ${stack} cannot be computed`);
  const registryHost = names[0];
  const registryAddress = addresses[0];
  if (registryHost === undefined || registryAddress === undefined)
    throw internalError(`stack ${stack} has no first host`);
  const cfg: BerthConfig = {
    stack,
    environment,
    labels,
    openstack: {
      ...o,
      floatingIpPool: o.floatingIpPool ?? o.externalNetwork,
    },
    hosts: {
      ...d.hosts,
      flavorSize: limitsInput.size,
      names,
      addresses,
    },
    registry: {
      hostname: d.registry.hostname,
      tls: registryTls(d.registry.tls),
      users: d.registry.users.map((u) => ({
        name: u.name,
        ...(u.password !== undefined ? { password: secretValue(u.password) } : {}),
      })),
      ...(d.registry.pullThroughCache
        ? {
            pullThroughCache: {
              remoteUrl: d.registry.pullThroughCache.remoteUrl,
              port: d.registry.pullThroughCache.port,
            },
          }
        : {}),
      image: d.registry.image,
      nginxImage: d.registry.nginxImage,
      upkeep: d.registry.upkeep,
      host: registryHost,
      address: registryAddress,
    },
    jenkins: {
      ...d.jenkins,
      perBuild: resolvePerBuild(stack, raw.source, d.jenkins.perBuild, names, d.registry.hostname, options),
    },
    services: {
      subnet: s.subnet,
      gateway: servicesAddresses.gateway,
      dnsAddress: servicesAddresses.dnsAddress,
      upstreamDns: s.upstreamDns ?? o.dnsServers,
      minimal: s.minimal,
      productionLike: resolveProductionLike(s.productionLike, options.root ?? PROJECT_ROOT),
      networkHolders: s.networkHolders,
      slots: s.slots ?? [],
      slotCidrs: s.slotCidrs ?? [],
    },
    dns: d.dns,
    monitoring: { cidrs: [...d.monitoring.cidrs], nodeExporterImage: d.monitoring.nodeExporterImage },
    extraIgnition: [],
    limits: {
      ...resolveLimits(limitsInput),
      reservedMemoryMiB: limitsInput.reservedMemoryMiB,
      overcommit: limitsInput.overcommit,
    },
    logs: d.logs.forward
      ? { forward: { url: d.logs.forward.url.replace(/\/$/, ""), serverCa: d.logs.forward.serverCa } }
      : {},
  };
  cfg.extraIgnition = loadFragments(stack, raw.source, cfg, d.extraIgnition, options.root ?? PROJECT_ROOT);
  if (pr !== undefined) cfg.preview = { pr: Number(pr), ttlHours: d.previewTtlHours };
  return cfg;
}

/** `berth validate`, `berth render`, `berth plan` and tests: the typed config of a stack in `root`. */
export function loadStack(root: string, stack: string, options: ResolveOptions = {}): BerthConfig {
  return resolveConfig(stack, readStack(root, stack), { root, ...options });
}

/**
 * Reads the stack's extra Ignition fragments and checks each: a file inside the project, holding an
 * Ignition 3.3.0 JSON object. Whether they merge with a host's own configuration (no path, unit or
 * device defined twice) needs the host's Ignition, so stack/validate.ts checks it.
 */
function loadFragments(
  stack: string,
  source: string,
  cfg: BerthConfig,
  entries: BerthValidated["extraIgnition"],
  root: string,
): ExtraIgnition[] {
  const issues: ConfigIssue[] = [];
  const fragments: ExtraIgnition[] = [];
  entries.forEach(({ path, secret }, i) => {
    const at = `berth:extraIgnition[${i}].path`;
    const file = resolvePath(root, path);
    const outside = fragmentPathProblem(root, path);
    if (outside !== undefined) {
      issues.push({ path: at, message: outside });
      return;
    }
    if (!existsSync(file)) {
      issues.push({ path: at, message: `no such file ${path} (paths are relative to the project root)` });
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      issues.push({ path: at, message: `${path} is not JSON: ${(e as Error).message}` });
      return;
    }
    const version = isObj(parsed) && isObj(parsed.ignition) ? parsed.ignition.version : undefined;
    if (version !== IGNITION_SPEC_VERSION) {
      issues.push({
        path: at,
        message: `${path} must be an Ignition config with "ignition": {"version": "${IGNITION_SPEC_VERSION}"}, got ${JSON.stringify(version)}`,
      });
      return;
    }
    fragments.push({ path, secret, config: parsed as IgnitionConfig });
  });
  if (issues.length > 0) throw new ConfigError(stack, source, issues);
  return fragments;
}
