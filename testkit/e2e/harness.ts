/**
 * Applies what the REAL Berth program registered for one host (run under Pulumi's mocks with
 * `runStack`/`runConfig`) to a real Docker engine: the host's networks, volumes, remote images and
 * containers, created through the Engine API the way the Pulumi Docker provider would create them.
 *
 * Strict by construction: every input field of those resources is either mapped to the Engine API
 * here, or listed in {@link NOT_APPLICABLE} with the reason it does not apply to a private test
 * engine. Anything else fails {@link planHost} with the resource and the field, so the harness can
 * never silently test less than the program asks for.
 *
 * What the harness has to change is recorded in {@link HostPlan.mappings} (published host IPs that
 * cannot be bound here → 127.0.0.1, or the test's hostIp, with free ports, images → stand-ins,
 * substituted uploads, …): tests print it, and each entry is a fact about the program worth knowing.
 */
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { DOCKER_BRIDGE_GATEWAY } from "../../config/addresses.ts";
import type { CapturedResource } from "../../plan/mocks.ts";
import type { StackRun } from "../../plan/run.ts";
import { DockerApi, DockerApiError, type Engine, type Upload } from "./support/engine.ts";
import { at, type Json } from "../../lib/json.ts";
import { standinFor } from "./support/images.ts";

export const TYPES = {
  network: "docker:index/network:Network",
  volume: "docker:index/volume:Volume",
  remoteImage: "docker:index/remoteImage:RemoteImage",
  container: "docker:index/container:Container",
  provider: "pulumi:providers:docker",
  dockerHost: "berth:docker:DockerHost",
} as const;

/**
 * Input fields the harness deliberately does not apply, with the reason. Keys are
 * `<type short name>.<field path>` (array elements as `[]`).
 */
export const NOT_APPLICABLE: Readonly<Record<string, string>> = {
  "remoteImage.keepLocally":
    "only matters when the RemoteImage is deleted; the stand-in is already local and never pulled",
};

/** Options of {@link planHost} / {@link applyHostToEngine}. */
export interface HarnessOptions {
  /**
   * Host IPs the program publishes on that cannot be bound on the test machine (the host's private
   * IP, docker0's 172.17.0.1) and 127.0.0.1 itself: each binding becomes 127.0.0.1 on a distinct
   * free port, recorded in {@link HostPlan.ports}. A binding on any other IP (or on all interfaces)
   * fails the plan.
   */
  publishedIps: readonly string[];
  /**
   * The local address those bindings are made on instead of 127.0.0.1: an address of the test
   * engine's own bridge, when a client must not see a loopback address (dockerd treats every
   * registry on 127.0.0.0/8 as insecure and skips TLS verification, so a push to 127.0.0.1 cannot
   * prove that the registry's CA is trusted). Default 127.0.0.1.
   */
  hostIp?: string;
  /**
   * The local address bindings on docker0's 172.17.0.1 are made on instead of `hostIp`: the test
   * engine's own default-bridge gateway, which containers reach as they reach 172.17.0.1 on a host
   * (and which, unlike a container's own address, survives a daemon restart).
   */
  gatewayHostIp?: string;
  /** Host paths a container may bind-mount (e.g. /var/run/docker.sock); any other fails the plan. */
  allowHostPaths?: readonly string[];
  /**
   * Host paths bind-mounted from another directory here (e.g. node_exporter's `/` from a scratch
   * directory, so the test machine's own mounts never enter a container); recorded in the mappings.
   */
  hostPathMap?: Readonly<Record<string, string>>;
  /**
   * Upload contents to use instead of the program's, by container name then file path (e.g. real
   * TLS material instead of the mock's). Each named upload must exist in the program's inputs.
   */
  substituteUploads?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /**
   * Health-check interval to use instead of the program's (Go duration, e.g. "1s"), so waits take
   * seconds, not the production interval. Recorded in the mappings when it changes anything.
   */
  healthInterval?: string;
  /**
   * Which containers get {@link healthInterval}: `all` (default), or `waited`, only those the
   * program itself waits on to be healthy (the provider's wait: `ContainerPlan.waitTimeout`); the
   * others keep the program's interval. Docker 20.10 has no start interval, so a short interval
   * probes for the whole run: on a small machine with many containers that alone is the load.
   */
  healthIntervalFor?: "all" | "waited";
  /**
   * Chooses the port each binding gets on its hostIp (default: a free port probed in this process's
   * network namespace). For an engine in a network namespace of its own, whose addresses this
   * process cannot bind to probe (test/e2e/support/netns.ts).
   */
  hostPort?: (published: PublishedPort) => number | Promise<number>;
}

export interface PublishedPort {
  container: string;
  /** Address and port the program asked for. */
  ip: string;
  external: number;
  internal: number;
  protocol: string;
  /** Where it is published here: hostIp:hostPort. */
  hostIp: string;
  hostPort: number;
}

/** A network's or a volume's create request, and the resource it comes from. */
export interface NamedPlan {
  resource: string;
  name: string;
  body: Record<string, unknown>;
}

export type NetworkPlan = NamedPlan;
export type VolumePlan = NamedPlan;

export interface ContainerPlan {
  resource: string;
  urn: string;
  name: string;
  /** Upstream image (the RemoteImage's pinned name) and its stand-in. */
  upstreamImage: string;
  image: string;
  /** Body of POST /containers/create. */
  body: Record<string, unknown>;
  /** Networks joined after create (the provider's networksAdvanced beyond the first). */
  connect: { network: string; endpoint: Record<string, unknown> }[];
  uploads: Upload[];
  mustRun: boolean;
  /** False for a container the program only creates (the provider's `start: false`). */
  start: boolean;
  /** Seconds to wait for `healthy` after start (the provider's wait/waitTimeout), or undefined. */
  waitTimeout?: number;
  /** Seconds `docker stop` gives the container before removal. */
  destroyGraceSeconds?: number;
  removeVolumes: boolean;
  /** Resource URNs of containers it depends on (within this host). */
  after: string[];
}

export interface HostPlan {
  host: string;
  /** `<provider urn>::<id>`. */
  provider: string;
  networks: NetworkPlan[];
  volumes: VolumePlan[];
  images: { resource: string; upstream: string; standin: string; imageId: string }[];
  /** In dependency order. */
  containers: ContainerPlan[];
  ports: PublishedPort[];
  /** Human-readable record of everything changed to run here. */
  mappings: string[];
}

/** Failure of the harness's strictness: names the resource and the field. */
export class HarnessError extends Error {}

// --- input reading -------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/** Removes secret marks everywhere (`{secret: true, value}` → value). */
export function unwrapSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (isObj(v)) {
    if (v.secret === true && "value" in v && Object.keys(v).length === 2) return unwrapSecrets(v.value);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

/**
 * Reads an object's fields, remembering which were read, so {@link Reader.done} can refuse the
 * rest. `path` is the field path used in error messages.
 */
class Reader {
  private readonly used = new Set<string>();
  constructor(
    private readonly resource: CapturedResource,
    private readonly kind: string,
    private readonly obj: Obj,
    private readonly path: string,
  ) {}

  private where(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  fail(key: string, why: string): never {
    throw new HarnessError(`${this.resource.type} ${this.resource.name}: field ${this.where(key)}: ${why}`);
  }

  raw(key: string): unknown {
    this.used.add(key);
    return this.obj[key];
  }

  str(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") this.fail(key, `expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  reqStr(key: string): string {
    const v = this.str(key);
    if (v === undefined) this.fail(key, "missing");
    return v;
  }

  num(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number") this.fail(key, `expected a number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") this.fail(key, `expected a boolean, got ${JSON.stringify(v)}`);
    return v;
  }

  strs(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      this.fail(key, `expected a list of strings, got ${JSON.stringify(v)}`);
    return v as string[];
  }

  strMap(key: string): Record<string, string> | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (!isObj(v) || Object.values(v).some((x) => typeof x !== "string"))
      this.fail(key, `expected a map of strings, got ${JSON.stringify(v)}`);
    return v as Record<string, string>;
  }

  /** Sub-readers for a list of objects; each must be fully read too. */
  list(key: string): Reader[] {
    const v = this.raw(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => !isObj(x))) this.fail(key, `expected a list of objects`);
    return (v as Obj[]).map((o, i) => new Reader(this.resource, this.kind, o, `${this.where(key)}[${i}]`));
  }

  /** The provider's `labels` list (`{ label, value }` entries) as Docker's Labels map, or undefined when empty. */
  labels(): Record<string, string> | undefined {
    const entries = this.list("labels").map((l) => {
      const kv = [l.reqStr("label"), l.reqStr("value")] as const;
      l.done();
      return kv;
    });
    return entries.length > 0 ? Object.fromEntries(entries) : undefined;
  }

  obj1(key: string): Reader | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) this.fail(key, "expected an object");
    return new Reader(this.resource, this.kind, v, this.where(key));
  }

  /** Fails on the first field not read and not in {@link NOT_APPLICABLE}. */
  done(): void {
    for (const key of Object.keys(this.obj)) {
      if (this.used.has(key) || this.obj[key] === undefined) continue;
      const generic = `${this.kind}.${this.where(key).replace(/\[\d+\]/g, "[]")}`;
      if (generic in (NOT_APPLICABLE as Obj)) continue;
      this.fail(
        key,
        "not understood by the e2e harness (map it in testkit/e2e/harness.ts, or list it in NOT_APPLICABLE with a reason)",
      );
    }
  }
}

/** Go duration ("30s", "1m30s", "500ms") → nanoseconds. */
export function durationNs(d: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let consumed = 0;
  for (const m of d.matchAll(re)) {
    total += Number(m[1]) * (unit[m[2] ?? "s"] ?? 0);
    consumed += m[0].length;
  }
  if (consumed !== d.length || d === "") throw new Error(`not a Go duration: ${JSON.stringify(d)}`);
  return Math.round(total);
}

function octal(mode: string, what: string): string {
  if (!/^0?[0-7]{3,4}$/.test(mode)) throw new HarnessError(`${what}: permissions ${mode} is not octal`);
  return mode;
}

function numericId(v: string | undefined, reader: Reader, key: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) reader.fail(key, `only numeric ids are supported here, got ${JSON.stringify(v)}`);
  return Number(v);
}

// --- planning ------------------------------------------------------------------------------------

/** The `<urn>::<id>` of `hostName`'s docker provider (under its DockerHost component). */
export function hostProvider(resources: readonly CapturedResource[], hostName: string): string {
  const hosts = resources.filter(
    (r) => r.type === TYPES.dockerHost && (r.name === hostName || r.name === `${hostName}-dockerd`),
  );
  if (hosts.length !== 1)
    throw new HarnessError(`expected one ${TYPES.dockerHost} for ${hostName}, found ${String(hosts.length)}`);
  const host = hosts[0] as CapturedResource;
  const providers = resources.filter((r) => r.type === TYPES.provider && r.parent === host.urn);
  if (providers.length !== 1 || !providers[0]?.id)
    throw new HarnessError(`expected one ${TYPES.provider} under ${host.urn}`);
  return `${providers[0].urn}::${providers[0].id}`;
}

/**
 * The registry users' passwords of a run: exactly the `RandomPassword` results the program generated
 * for the registry on `hostName` (the mock's deterministic values), by user.
 */
export function generatedRegistryPasswords(
  resources: readonly CapturedResource[],
  hostName: string,
  users: readonly { name: string }[],
): Record<string, string> {
  const passwords: Record<string, string> = {};
  for (const u of users) {
    const pw = resources.find(
      (r) =>
        r.type === "random:index/randomPassword:RandomPassword" &&
        r.name === `${hostName}-registry-user-${u.name}`,
    )?.state.result;
    if (typeof pw !== "string") throw new HarnessError(`no generated password for registry user ${u.name}`);
    passwords[u.name] = pw;
  }
  return passwords;
}

/**
 * Reads and checks everything the program registered for `hostName`'s docker provider and turns it
 * into Engine API requests. Pure (no engine), and strict: see the module comment. Host ports are
 * left 0 here; {@link applyHostToEngine} assigns free ones. The steps: the host's resources, its
 * networks, volumes and images, each container (see {@link planContainer}), then the containers in
 * dependency order.
 */
export function planHost(run: Pick<StackRun, "resources">, hostName: string, opts: HarnessOptions): HostPlan {
  const provider = hostProvider(run.resources, hostName);
  const mine = hostResources(run.resources, provider);
  const mappings: string[] = [];
  const substitutions = new Map<string, Map<string, string>>(
    Object.entries(opts.substituteUploads ?? {}).map(([c, files]) => [c, new Map(Object.entries(files))]),
  );
  const networks = mine.filter((r) => r.type === TYPES.network).map(planNetwork);
  const volumes = mine.filter((r) => r.type === TYPES.volume).map(planVolume);
  const images = mine.filter((r) => r.type === TYPES.remoteImage).map((r) => planImage(r, mappings));

  const ports: PublishedPort[] = [];
  const containerResources = mine.filter((r) => r.type === TYPES.container);
  const containerUrns = new Set(containerResources.map((r) => r.urn));
  const host: HostSoFar = { opts, networks, volumes, images, ports, mappings, substitutions, containerUrns };
  const unordered = containerResources.map((r) => planContainer(r, host));
  if (substitutions.size > 0)
    throw new HarnessError(
      `the test substitutes uploads of containers the program does not create: ${[...substitutions.keys()].join(", ")}`,
    );
  const containers = inDependencyOrder(unordered, hostName);
  return { host: hostName, provider, networks, volumes, images, containers, ports, mappings };
}

/** The resources of one host's docker provider, refusing any type the harness does not map. */
function hostResources(resources: readonly CapturedResource[], provider: string): CapturedResource[] {
  const mine = resources.filter((r) => r.provider === provider);
  const known = new Set<string>(Object.values(TYPES));
  for (const r of mine) {
    if (!known.has(r.type) || r.type === TYPES.provider || r.type === TYPES.dockerHost)
      throw new HarnessError(`${r.type} ${r.name}: resource type not supported by the e2e harness`);
  }
  return mine;
}

/** What {@link planContainer} needs of the host: the test's options and what is planned so far. */
interface HostSoFar {
  opts: HarnessOptions;
  networks: readonly NetworkPlan[];
  volumes: readonly VolumePlan[];
  images: readonly ImagePlan[];
  containerUrns: ReadonlySet<string>;
  /** Appended to: the container's published ports. */
  ports: PublishedPort[];
  /** Appended to: what the harness changed. */
  mappings: string[];
  /** Consumed: the test's upload substitutions, by container name. */
  substitutions: Map<string, Map<string, string>>;
}

type ImagePlan = HostPlan["images"][number];

/** Sets `target[key]` when `v` is defined. */
function put(target: Obj, key: string, v: unknown): void {
  if (v !== undefined) target[key] = v;
}

/** MiB (the provider's "MB") to bytes, undefined kept. */
const mib = (n: number | undefined): number | undefined => (n === undefined ? undefined : n * 1024 * 1024);

/** How a provider input is read and converted for the Engine API. */
const READ = {
  str: (rd: Reader, key: string) => rd.str(key),
  strs: (rd: Reader, key: string) => rd.strs(key),
  num: (rd: Reader, key: string) => rd.num(key),
  bool: (rd: Reader, key: string) => rd.bool(key),
  strMap: (rd: Reader, key: string) => rd.strMap(key),
  mib: (rd: Reader, key: string) => mib(rd.num(key)),
};

/** An Engine API field that takes one provider input as it is (after READ's conversion). */
type Copied = readonly [api: string, input: string, read: keyof typeof READ];

/** Copies `fields` from `rd` into `target`, in order, leaving out inputs that are not set. */
function copyFields(rd: Reader, target: Obj, fields: readonly Copied[]): void {
  for (const [api, input, read] of fields) put(target, api, READ[read](rd, input));
}

/** The container create body's fields that are provider inputs as they are. */
const CONTAINER_FIELDS: readonly Copied[] = [
  ["Env", "envs", "strs"],
  ["Cmd", "command", "strs"],
  ["Entrypoint", "entrypoints", "strs"],
  ["User", "user", "str"],
  ["WorkingDir", "workingDir", "str"],
  ["Domainname", "domainname", "str"],
  ["StopSignal", "stopSignal", "str"],
  ["StopTimeout", "stopTimeout", "num"],
  ["Tty", "tty", "bool"],
  ["OpenStdin", "stdinOpen", "bool"],
];

/**
 * HostConfig's resolver, security and misc settings and memory limits that are provider inputs as
 * they are (the provider's memory, memorySwap and shmSize are in MiB).
 */
const HOST_SETTINGS: readonly Copied[] = [
  ["Dns", "dns", "strs"],
  ["DnsSearch", "dnsSearches", "strs"],
  ["DnsOptions", "dnsOpts", "strs"],
  ["SecurityOpt", "securityOpts", "strs"],
  ["GroupAdd", "groupAdds", "strs"],
  ["Privileged", "privileged", "bool"],
  ["ReadonlyRootfs", "readOnly", "bool"],
  ["Init", "init", "bool"],
  ["ShmSize", "shmSize", "mib"],
  ["Memory", "memory", "mib"],
  ["MemorySwap", "memorySwap", "mib"],
];

/**
 * A network's or a volume's create request: `Name`, then what `fill` reads into the body, then
 * `Labels`. Every input field is read (the reader fails on any left over).
 */
function planNamed(r: CapturedResource, what: string, fill: (rd: Reader, body: Obj) => void): NamedPlan {
  const rd = new Reader(r, what, unwrapSecrets(r.inputs) as Obj, "");
  const name = rd.reqStr("name");
  const body: Obj = { Name: name };
  fill(rd, body);
  put(body, "Labels", rd.labels());
  rd.done();
  return { resource: r.name, name, body };
}

const planNetwork = (r: CapturedResource): NetworkPlan =>
  planNamed(r, "network", (rd, body) => {
    body.Driver = rd.str("driver") ?? "bridge";
    body.CheckDuplicate = true;
    body.Internal = rd.bool("internal") ?? false;
    put(body, "Attachable", rd.bool("attachable"));
    put(body, "EnableIPv6", rd.bool("ipv6"));
    put(body, "Options", rd.strMap("options"));
    const ipam = rd.list("ipamConfigs").map((c) => {
      const cfg: Obj = {};
      put(cfg, "Subnet", c.str("subnet"));
      put(cfg, "Gateway", c.str("gateway"));
      put(cfg, "IPRange", c.str("ipRange"));
      put(cfg, "AuxiliaryAddresses", c.strMap("auxAddress"));
      c.done();
      return cfg;
    });
    const ipamDriver = rd.str("ipamDriver");
    if (ipam.length > 0 || ipamDriver) body.IPAM = { Driver: ipamDriver ?? "default", Config: ipam };
  });

const planVolume = (r: CapturedResource): VolumePlan =>
  planNamed(r, "volume", (rd, body) => {
    put(body, "Driver", rd.str("driver") || undefined);
    put(body, "DriverOpts", rd.strMap("driverOpts"));
  });

function planImage(r: CapturedResource, mappings: string[]): ImagePlan {
  const rd = new Reader(r, "remoteImage", unwrapSecrets(r.inputs) as Obj, "");
  const upstream = rd.reqStr("name");
  rd.done();
  const standin = standinFor(upstream);
  const imageId = r.state.imageId;
  if (typeof imageId !== "string") throw new HarnessError(`${r.type} ${r.name}: no imageId in its state`);
  mappings.push(`image ${upstream} → ${standin}`);
  return { resource: r.name, upstream, standin, imageId };
}

/**
 * One container's create request, in the provider's order of concerns: image and process, health
 * check, host settings and limits, ports, mounts, networks, uploads, then the provider's own
 * lifecycle fields. Every input field is read (the reader fails on any left over).
 */
function planContainer(r: CapturedResource, host: HostSoFar): ContainerPlan {
  const { opts, images, mappings } = host;
  const rd = new Reader(r, "container", unwrapSecrets(r.inputs) as Obj, "");
  const name = rd.reqStr("name");
  const imageRef = rd.reqStr("image");
  const img =
    images.find((i) => i.imageId === imageRef || i.upstream === imageRef) ??
    rd.fail("image", `${imageRef} is not the image of a RemoteImage on this host`);

  const hostConfig: Obj = {};
  const body: Obj = { Image: img.standin, Hostname: rd.str("hostname") ?? name };
  copyFields(rd, body, CONTAINER_FIELDS);
  const labels = rd.labels();
  if (labels) body.Labels = labels;
  put(body, "Healthcheck", containerHealth(rd, name, opts, mappings));
  containerHostSettings(rd, name, hostConfig, mappings);
  containerPorts(rd, name, host, body, hostConfig);
  containerMounts(rd, name, host, hostConfig);
  const connect = containerNetworks(rd, host.networks, body, hostConfig);
  const uploads = containerUploads(rd, r, name, host);

  const mustRun = rd.bool("mustRun") ?? true;
  const start = rd.bool("start") ?? true;
  const wait = rd.bool("wait") ?? false;
  const waitTimeout = rd.num("waitTimeout") ?? 60;
  const destroyGraceSeconds = rd.num("destroyGraceSeconds");
  const removeVolumes = rd.bool("removeVolumes") ?? true;
  rd.done();
  body.HostConfig = hostConfig;
  return {
    resource: r.name,
    urn: r.urn,
    name,
    upstreamImage: img.upstream,
    image: img.standin,
    body,
    connect,
    uploads,
    mustRun,
    start,
    ...(wait ? { waitTimeout } : {}),
    ...(destroyGraceSeconds !== undefined ? { destroyGraceSeconds } : {}),
    removeVolumes,
    after: r.dependencies.filter((d) => host.containerUrns.has(d)),
  };
}

/** The health check (and the test's shorter interval, where it applies). */
function containerHealth(
  rd: Reader,
  name: string,
  opts: HarnessOptions,
  mappings: string[],
): Obj | undefined {
  const hc = rd.obj1("healthcheck");
  if (!hc) return undefined;
  const interval = hc.str("interval");
  const startPeriod = hc.str("startPeriod");
  const startInterval = hc.str("startInterval");
  const health: Obj = {
    Test: hc.strs("tests"),
    Interval: interval ? durationNs(interval) : 0,
    Timeout: durationNs(hc.str("timeout") ?? "0s"),
    Retries: hc.num("retries") ?? 0,
    StartPeriod: startPeriod ? durationNs(startPeriod) : 0,
    ...(startInterval ? { StartInterval: durationNs(startInterval) } : {}),
  };
  hc.done();
  const shorten = (opts.healthIntervalFor ?? "all") === "all" || rd.bool("wait") === true;
  if (opts.healthInterval && shorten && interval !== opts.healthInterval) {
    health.Interval = durationNs(opts.healthInterval);
    mappings.push(`${name}: health-check interval ${interval ?? "default"} → ${opts.healthInterval}`);
  }
  return health;
}

/** Restart policy, logging, resolver, security and other host settings, and the resource limits. */
function containerHostSettings(rd: Reader, name: string, hostConfig: Obj, mappings: string[]): void {
  const restart = rd.str("restart");
  const maxRetry = rd.num("maxRetryCount");
  if (restart) hostConfig.RestartPolicy = { Name: restart, MaximumRetryCount: maxRetry ?? 0 };
  const logDriver = rd.str("logDriver");
  const logOpts = rd.strMap("logOpts");
  if (logDriver || logOpts) hostConfig.LogConfig = { Type: logDriver ?? "", Config: logOpts ?? {} };

  // Resolver, security, misc host settings and memory limits (config/limits.ts).
  copyFields(rd, hostConfig, HOST_SETTINGS);
  // The CPU limit ("1.5") becomes NanoCpus, as the provider sends it.
  const cpus = rd.str("cpus");
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (!Number.isFinite(n) || n <= 0) rd.fail("cpus", `${JSON.stringify(cpus)} is not a CPU count`);
    // dockerd refuses a CPU limit above the machine's CPUs: the flavor's vCPUs (the program's
    // sizing) can be more than this test machine has.
    const here = availableParallelism();
    if (n > here)
      mappings.push(`${name}: cpus ${cpus} → ${String(here)} (this machine has ${String(here)} CPUs)`);
    hostConfig.NanoCpus = Math.round(Math.min(n, here) * 1e9);
  }
  put(hostConfig, "Tmpfs", rd.strMap("tmpfs"));
  put(hostConfig, "Sysctls", rd.strMap("sysctls"));
  const caps = rd.obj1("capabilities");
  if (caps) {
    put(hostConfig, "CapAdd", caps.strs("adds"));
    put(hostConfig, "CapDrop", caps.strs("drops"));
    caps.done();
  }
  const hosts = rd.list("hosts").map((h) => {
    const line = `${h.reqStr("host")}:${h.reqStr("ip")}`;
    h.done();
    return line;
  });
  if (hosts.length > 0) hostConfig.ExtraHosts = hosts;
}

/** Published ports, each recorded in `host.ports` (its host port is chosen when applied). */
function containerPorts(rd: Reader, name: string, host: HostSoFar, body: Obj, hostConfig: Obj): void {
  const exposed: Obj = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of rd.list("ports")) {
    const internal = p.num("internal") ?? p.fail("internal", "missing");
    const external = p.num("external") ?? internal;
    const protocol = p.str("protocol") ?? "tcp";
    const ip = p.str("ip") ?? "0.0.0.0";
    p.done();
    if (!host.opts.publishedIps.includes(ip))
      p.fail(
        "ip",
        `publishes on ${ip}, which is not one of the host IPs the test maps (${host.opts.publishedIps.join(", ")})`,
      );
    const key = `${String(internal)}/${protocol}`;
    exposed[key] = {};
    const hostIp =
      ip === DOCKER_BRIDGE_GATEWAY && host.opts.gatewayHostIp !== undefined
        ? host.opts.gatewayHostIp
        : (host.opts.hostIp ?? "127.0.0.1");
    (bindings[key] ??= []).push({ HostIp: hostIp, HostPort: "" });
    host.ports.push({ container: name, ip, external, internal, protocol, hostIp, hostPort: 0 });
  }
  if (Object.keys(exposed).length > 0) {
    body.ExposedPorts = exposed;
    hostConfig.PortBindings = bindings;
  }
}

/** Named volumes of this host, and host paths the test maps or allows. */
function containerMounts(rd: Reader, name: string, host: HostSoFar, hostConfig: Obj): void {
  const mounts: Obj[] = [];
  for (const v of rd.list("volumes")) {
    const target = v.reqStr("containerPath");
    const volumeName = v.str("volumeName");
    const hostPath = v.str("hostPath");
    const readOnly = v.bool("readOnly") ?? false;
    v.done();
    if (volumeName && !hostPath) {
      if (!host.volumes.some((x) => x.name === volumeName))
        v.fail("volumeName", `${volumeName} is not a Volume of this host`);
      mounts.push({ Type: "volume", Source: volumeName, Target: target, ReadOnly: readOnly });
    } else if (hostPath && !volumeName && host.opts.hostPathMap?.[hostPath] !== undefined) {
      const source = host.opts.hostPathMap[hostPath];
      mounts.push({ Type: "bind", Source: source, Target: target, ReadOnly: readOnly });
      host.mappings.push(`${name}: bind-mount of the host's ${hostPath} → ${source}`);
    } else if (hostPath && !volumeName) {
      if (!(host.opts.allowHostPaths ?? []).includes(hostPath))
        v.fail("hostPath", `bind-mounts the host's ${hostPath}; the test did not allow it`);
      mounts.push({ Type: "bind", Source: hostPath, Target: target, ReadOnly: readOnly });
      host.mappings.push(`${name}: bind-mounts ${hostPath} (allowed by the test)`);
    } else {
      v.fail("volumeName", "exactly one of volumeName and hostPath is supported");
    }
  }
  if (mounts.length > 0) hostConfig.Mounts = mounts;
}

/** The first network goes into the create request; the others are returned, to connect before start. */
function containerNetworks(
  rd: Reader,
  networks: readonly NetworkPlan[],
  body: Obj,
  hostConfig: Obj,
): ContainerPlan["connect"] {
  // Networks: the provider creates the container, detaches the default network when
  // networksAdvanced is set, and connects each listed network. Same result here: create on the
  // first listed network, connect the others before start.
  const networkMode = rd.str("networkMode");
  const advanced = rd.list("networksAdvanced").map((n) => {
    const net = n.reqStr("name");
    const aliases = n.strs("aliases");
    const ipv4 = n.str("ipv4Address");
    const ipv6 = n.str("ipv6Address");
    n.done();
    if (net !== "bridge" && !networks.some((x) => x.name === net))
      n.fail("name", `${net} is neither the default bridge nor a Network of this host`);
    return {
      network: net,
      endpoint: {
        ...(aliases ? { Aliases: aliases } : {}),
        ...(ipv4 || ipv6
          ? {
              IPAMConfig: {
                ...(ipv4 ? { IPv4Address: ipv4 } : {}),
                ...(ipv6 ? { IPv6Address: ipv6 } : {}),
              },
            }
          : {}),
      },
    };
  });
  if (networkMode === "host") rd.fail("networkMode", "host networking cannot be isolated in a test");
  if (advanced.length > 0) {
    if (networkMode !== undefined && networkMode !== "bridge" && networkMode !== "default")
      rd.fail("networkMode", `${networkMode} together with networksAdvanced`);
    const [first, ...rest] = advanced as [(typeof advanced)[number], ...typeof advanced];
    hostConfig.NetworkMode = first.network;
    body.NetworkingConfig = { EndpointsConfig: { [first.network]: first.endpoint } };
    return rest;
  }
  hostConfig.NetworkMode = networkMode ?? "bridge";
  return [];
}

/** The provider's uploads (an archive put into the created container), with the test's substitutions. */
function containerUploads(rd: Reader, r: CapturedResource, name: string, host: HostSoFar): Upload[] {
  const subs = host.substitutions.get(name);
  const uploads: Upload[] = rd.list("uploads").map((u) => {
    const file = u.reqStr("file");
    const content = u.str("content");
    const base64 = u.str("contentBase64");
    const executable = u.bool("executable") ?? false;
    const permissions = u.str("permissions");
    const uid = numericId(u.str("owner"), u, "owner");
    const gid = numericId(u.str("group"), u, "group");
    u.done();
    if ((content === undefined) === (base64 === undefined))
      u.fail("content", "exactly one of content and contentBase64 is supported");
    let data: string | Buffer = content ?? Buffer.from(base64 ?? "", "base64");
    const sub = subs?.get(file);
    if (sub !== undefined) {
      data = sub;
      subs?.delete(file);
      host.mappings.push(`${name}: upload ${file} substituted by the test`);
    }
    return {
      path: file,
      content: data,
      mode: permissions ? octal(permissions, `${r.name} upload ${file}`) : executable ? "0755" : "0644",
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    };
  });
  if (subs && subs.size > 0)
    throw new HarnessError(
      `${r.type} ${r.name}: the test substitutes uploads the program does not make: ${[...subs.keys()].join(", ")}`,
    );
  host.substitutions.delete(name);
  return uploads;
}

/** Containers in dependency order (stable: registration order among the ready ones). */
function inDependencyOrder(unordered: readonly ContainerPlan[], hostName: string): ContainerPlan[] {
  const containers: ContainerPlan[] = [];
  const placed = new Set<string>();
  while (containers.length < unordered.length) {
    const next = unordered.find((c) => !placed.has(c.urn) && c.after.every((a) => placed.has(a)));
    if (!next) throw new HarnessError(`dependency cycle among the containers of ${hostName}`);
    containers.push(next);
    placed.add(next.urn);
  }
  return containers;
}

// --- applying ------------------------------------------------------------------------------------

/** Ports this process has handed out: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>();

/**
 * A free TCP port on `host` (default 127.0.0.1; closed again, the engine binds it right after),
 * never one this process handed out before — two mappings of one host must not get the same port.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probePort(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no fresh free port on ${host} after 50 attempts`);
}

function probePort(host: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}

/** The program's host, applied to an engine. */
export class AppliedHost {
  constructor(
    readonly plan: HostPlan,
    readonly api: DockerApi,
  ) {}

  /** Port on the plan's hostIp for `container`'s `internal` port published on `ip` (any IP when omitted). */
  port(container: string, internal: number, ip?: string): number {
    const p = this.plan.ports.find(
      (x) => x.container === container && x.internal === internal && (ip === undefined || x.ip === ip),
    );
    if (!p) throw new Error(`${container} does not publish ${String(internal)}${ip ? ` on ${ip}` : ""}`);
    return p.hostPort;
  }

  container(name: string): ContainerPlan {
    const c = this.plan.containers.find((x) => x.name === name);
    if (!c) throw new Error(`no container ${name} on ${this.plan.host}`);
    return c;
  }

  /** Creates, uploads into, connects and starts one container as planned. */
  async create(c: ContainerPlan): Promise<string> {
    const body = structuredClone(c.body);
    const hc = body.HostConfig as Obj;
    const bindings = hc.PortBindings as Record<string, { HostIp: string; HostPort: string }[]> | undefined;
    if (bindings) {
      for (const [key, list] of Object.entries(bindings)) {
        const [internal, protocol] = key.split("/");
        const mine = this.plan.ports.filter(
          (p) => p.container === c.name && String(p.internal) === internal && p.protocol === protocol,
        );
        list.forEach((b, i) => {
          b.HostPort = String(mine[i]?.hostPort ?? "");
        });
      }
    }
    const res = await this.api.call("POST", `/containers/create?name=${encodeURIComponent(c.name)}`, body);
    const id = at(res, "Id");
    if (typeof id !== "string") throw new Error(`create ${c.name}: ${JSON.stringify(res)}`);
    if (c.uploads.length > 0) await this.api.upload(id, c.uploads);
    for (const n of c.connect)
      await this.api.call("POST", `/networks/${encodeURIComponent(n.network)}/connect`, {
        Container: id,
        EndpointConfig: n.endpoint,
      });
    if (!c.start) return id;
    await this.api.start(id);
    if (c.mustRun) {
      await sleep(200);
      const running = at(await this.api.inspect(id), "State", "Running");
      if (running !== true) throw new Error(`${c.name} is not running after start (mustRun)`);
    }
    if (c.waitTimeout !== undefined) await this.api.waitHealthy(c.name, c.waitTimeout * 1000);
    return id;
  }

  /** Stops (with its destroyGraceSeconds) and removes a container, as the provider's delete does. */
  async remove(name: string): Promise<void> {
    const c = this.container(name);
    const t = c.destroyGraceSeconds ?? 10;
    try {
      await this.api.call("POST", `/containers/${encodeURIComponent(name)}/stop?t=${String(t)}`);
    } catch (e) {
      if (!(e instanceof DockerApiError && e.status === 304)) throw e;
    }
    await this.api.call(
      "DELETE",
      `/containers/${encodeURIComponent(name)}?v=${String(c.removeVolumes)}&force=true`,
    );
  }

  /** Replaces a container from the same definition (named volumes stay). */
  async replace(name: string): Promise<string> {
    await this.remove(name);
    return this.create(this.container(name));
  }

  /**
   * Inspects a container, retrying while the engine's socket refuses or drops connections (a
   * daemon that has just been restarted).
   */
  async inspect(name: string, timeoutMs = 30_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.api.inspect(name);
      } catch (e) {
        if (e instanceof DockerApiError || Date.now() > deadline) throw e;
        await sleep(250);
      }
    }
  }

  /**
   * Waits until every container with a health check reports `healthy` and every other started one runs;
   * fails with the container's state and last log lines when the time is up.
   */
  async waitAllHealthy(timeoutMs = 120_000): Promise<Record<string, string>> {
    const status: Record<string, string> = {};
    const deadline = Date.now() + timeoutMs;
    await Promise.all(
      this.plan.containers.map(async (c) => {
        if (!c.start) {
          status[c.name] = "created (never started)";
          return;
        }
        const wantHealth = c.body.Healthcheck !== undefined;
        let state: Json | undefined;
        while (Date.now() < deadline) {
          state = at(await this.inspect(c.name), "State");
          if (wantHealth ? at(state, "Health", "Status") === "healthy" : at(state, "Running") === true) {
            status[c.name] = wantHealth ? "healthy" : "running (no health check)";
            return;
          }
          await sleep(250);
        }
        const logs = await this.api
          .call("GET", `/containers/${encodeURIComponent(c.name)}/logs?stdout=1&stderr=1&tail=30`)
          .catch((e: unknown) => String(e));
        throw new Error(
          `${c.name} is not ${wantHealth ? "healthy" : "running"}: ${JSON.stringify(state)}\n${JSON.stringify(logs)}`,
        );
      }),
    );
    return status;
  }
}

/**
 * Creates exactly what the program registered for `hostName` on `engine`: networks, volumes, then
 * the containers in dependency order (images are the local stand-ins, checked to exist).
 */
export async function applyHostToEngine(
  run: Pick<StackRun, "resources">,
  hostName: string,
  engine: Engine,
  opts: HarnessOptions,
): Promise<AppliedHost> {
  // node_exporter bind-mounts the host's `/`: unless the test gives its own, an empty stand-in
  // under the engine's work directory (removed with it), so the test machine's mounts stay out.
  let options = opts;
  if (opts.hostPathMap?.["/"] === undefined) {
    const root = join(engine.workdir, "host-root");
    mkdirSync(join(root, "var/lib/berth/textfile"), { recursive: true, mode: 0o755 });
    options = { ...opts, hostPathMap: { ...opts.hostPathMap, "/": root } };
  }
  const plan = planHost(run, hostName, options);
  const api = new DockerApi(engine.socket);
  for (const p of plan.ports) {
    p.hostPort = opts.hostPort ? await opts.hostPort(p) : await freePort(p.hostIp);
    plan.mappings.push(
      `${p.container}: port ${p.ip}:${String(p.external)}/${p.protocol} → ${p.hostIp}:${String(p.hostPort)}`,
    );
  }
  for (const img of plan.images) await api.call("GET", `/images/${img.standin}/json`);
  for (const n of plan.networks) await api.call("POST", "/networks/create", n.body);
  for (const v of plan.volumes) await api.call("POST", "/volumes/create", v.body);
  const applied = new AppliedHost(plan, api);
  for (const c of plan.containers) await applied.create(c);
  return applied;
}

export type { Json };
