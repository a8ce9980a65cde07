/**
 * Resource limits of every container Berth runs (pure): memory and CPU per container kind, sized
 * from the host flavor unless the stack sets them (`berth:limits.containers.<kind>`), and the
 * over-commit rule validation applies per host (`berth:limits.overcommit`).
 *
 * The flavor's size: `berth:hosts.flavorSize` when declared, else {@link KNOWN_FLAVORS} (Nova's
 * classic `m1.*` flavors). Nothing offline knows the RAM and vCPUs of another flavor, so a stack
 * with another flavor must declare its size.
 *
 * Defaults, with A = flavor memory − `reservedMemoryMiB` (the OS, dockerd, sshd, the upkeep timers)
 * and V = the flavor's vCPUs:
 *
 * - each service kind (and dnsmasq, network holders, the registry, its mirror, nginx, node_exporter) gets a fixed
 *   fraction of A and of V, with a floor ({@link SERVICE_SHARES});
 * - what is left of A × overcommit.memory and of V × overcommit.cpu on the fullest host is shared
 *   equally by the builders: every static agent and, on per-build hosts, `perBuild.instanceCap`
 *   build containers (capped at V CPUs each). The same builder size applies on every host.
 *
 * So the defaults always fit the over-commit rule; validation refuses what an override breaks.
 * Docker applies each limit as the container's cgroup limit: `memory` (and `memorySwap` equal to
 * it: no swap beyond the limit) and `cpus` (a CFS quota, NanoCpus).
 *
 * Process counts (`pids`, the cgroup's pids.max): neither the Pulumi Docker provider (@pulumi/docker
 * 5.2.0 has no pidsLimit) nor the Jenkins Docker plugin's template can set them, so each container
 * carries its limit in the label {@link PIDS_LIMIT_LABEL} and the host service `berth-pids-limit`
 * (renderers/pids-limit.ts) applies it with `docker update --pids-limit` when the container is
 * created or started; a container without the label gets `defaultPids` (those a job starts itself).
 * Fixed per service kind ({@link PIDS_DEFAULTS}); builders get {@link BUILDER_PIDS_PER_MIB} per MiB
 * of their memory limit (so sized from the flavor), at least {@link BUILDER_MIN_PIDS}.
 */
import { SERVICE_KINDS, type ServiceKind } from "./images.ts";

/** The label that carries a container's process-count limit to the host's `berth-pids-limit` service. */
export { PIDS_LIMIT_LABEL } from "../renderers/pids-limit.ts";
/** The smallest pids limit Berth accepts (a container's init, a shell and a pipeline need more than a few). */
export const MIN_PIDS = 16;
/** The largest: Linux's PID_MAX_LIMIT on 64-bit (4194304); a limit above it limits nothing. */
export const MAX_PIDS = 4_194_304;
/** Builders' default pids limit per MiB of their memory limit (a task is at least ~20 KiB of kernel memory, a thread's stack far more). */
export const BUILDER_PIDS_PER_MIB = 2;
/** Builders' smallest default pids limit. */
export const BUILDER_MIN_PIDS = 1024;

/** Docker refuses a memory limit below 6 MiB. */
export const DOCKER_MIN_MEMORY_MIB = 6;
/** Docker's smallest CPU limit (`--cpus 0.01`). */
export const DOCKER_MIN_CPUS = 0.01;
/** A builder (agent, per-build container) with less memory than this cannot run a build: refused. */
export const BUILDER_MIN_MEMORY_MIB = 512;

export const LIMIT_DEFAULTS = {
  reservedMemoryMiB: 1024,
  overcommit: { memory: 1.0, cpu: 2.0 },
  /**
   * `berth:limits.defaultPids`. Fixed, not derived from the builders' size: it is part of every
   * host's Ignition, which must not change (and replace the hosts) when agents or slots are added.
   */
  defaultPids: 4096,
} as const;

/** Sizes of Nova's classic flavors (the ones `nova-manage` and devstack create). */
export const KNOWN_FLAVORS: Readonly<Record<string, FlavorSize>> = {
  "m1.tiny": { memoryMiB: 512, vcpus: 1 },
  "m1.small": { memoryMiB: 2048, vcpus: 1 },
  "m1.medium": { memoryMiB: 4096, vcpus: 2 },
  "m1.large": { memoryMiB: 8192, vcpus: 4 },
  "m1.xlarge": { memoryMiB: 16384, vcpus: 8 },
};

export interface FlavorSize {
  memoryMiB: number;
  vcpus: number;
}

/** Container kinds that carry limits, as keys of `berth:limits.containers`. */
export const LIMIT_KINDS = [
  // Every backend service kind of the catalog (config/images.ts), then Berth's own containers.
  ...SERVICE_KINDS,
  "dnsmasq",
  "holder",
  "registry",
  "registryMirror",
  "nginx",
  "nodeExporter",
  "agent",
  "perBuild",
] as const;
export type LimitKind = (typeof LIMIT_KINDS)[number];
type FixedKind = Exclude<LimitKind, "agent" | "perBuild">;

/** The limits of one container. */
export interface ContainerLimit {
  /** Memory limit in MiB (also the memory+swap limit: no swap beyond it). */
  memoryMiB: number;
  /** CPU limit in CPUs (fractions allowed). */
  cpus: number;
  /** Process-count limit (tasks: processes and threads), applied by the host's `berth-pids-limit`. */
  pids: number;
}

/**
 * Default share of a fixed kind: `memory` is the fraction of A, `cpu` the fraction of V; the
 * minimums keep a small flavor's services usable (mongod needs ~512 MiB for its cache).
 */
export const SERVICE_SHARES: Readonly<
  Record<FixedKind, { memory: number; minMemoryMiB: number; cpu: number; minCpus: number }>
> = {
  redis: { memory: 1 / 64, minMemoryMiB: 64, cpu: 1 / 32, minCpus: 0.25 },
  mongodb: { memory: 1 / 32, minMemoryMiB: 512, cpu: 1 / 16, minCpus: 0.5 },
  postgres: { memory: 1 / 32, minMemoryMiB: 256, cpu: 1 / 16, minCpus: 0.5 },
  memcached: { memory: 1 / 64, minMemoryMiB: 64, cpu: 1 / 32, minCpus: 0.25 },
  rabbitmq: { memory: 1 / 32, minMemoryMiB: 256, cpu: 1 / 16, minCpus: 0.5 },
  dnsmasq: { memory: 1 / 256, minMemoryMiB: 32, cpu: 1 / 64, minCpus: 0.1 },
  holder: { memory: 1 / 256, minMemoryMiB: 32, cpu: 1 / 64, minCpus: 0.1 },
  registry: { memory: 1 / 32, minMemoryMiB: 256, cpu: 1 / 16, minCpus: 0.5 },
  registryMirror: { memory: 1 / 32, minMemoryMiB: 256, cpu: 1 / 16, minCpus: 0.5 },
  nginx: { memory: 1 / 64, minMemoryMiB: 64, cpu: 1 / 32, minCpus: 0.25 },
  nodeExporter: { memory: 1 / 256, minMemoryMiB: 64, cpu: 1 / 64, minCpus: 0.1 },
};

/**
 * Default pids limit of each fixed kind, from what the program runs: one thread (mongod) or process
 * (postgres) per connection, socat's process per forwarded connection (holders), Go and Erlang
 * runtimes' threads, nginx's and dnsmasq's few workers; with room to spare, as a cap against a runaway.
 */
export const PIDS_DEFAULTS: Readonly<Record<FixedKind, number>> = {
  redis: 256,
  mongodb: 1024,
  postgres: 512,
  memcached: 256,
  rabbitmq: 1024,
  dnsmasq: 64,
  holder: 1024,
  registry: 512,
  registryMirror: 512,
  nginx: 256,
  nodeExporter: 128,
};

/** The default pids limit of a builder with `memoryMiB` of memory. */
export function builderPids(memoryMiB: number): number {
  return Math.min(MAX_PIDS, Math.max(BUILDER_MIN_PIDS, Math.floor(memoryMiB * BUILDER_PIDS_PER_MIB)));
}

/** What runs on one host, as far as limits go. */
export interface HostInventory {
  name: string;
  /** Container kind → number of such containers on the host. */
  counts: Partial<Record<LimitKind, number>>;
}

/** Everything the limits are computed from (plain values; built from raw or resolved configuration). */
export interface LimitsInput {
  flavor: string;
  size: FlavorSize;
  reservedMemoryMiB: number;
  overcommit: { memory: number; cpu: number };
  /** `berth:limits.containers`: what the stack sets, per kind and field. */
  configured: Partial<Record<LimitKind, Partial<ContainerLimit>>>;
  /** `berth:limits.defaultPids`, when the stack sets it. */
  defaultPids?: number;
  hosts: HostInventory[];
}

export interface HostLimitsTotal {
  name: string;
  memoryMiB: number;
  cpus: number;
  /** Kind, count and per-container limit of what adds up to the totals. */
  parts: { kind: LimitKind; count: number; limit: ContainerLimit }[];
}

export interface ResolvedLimits {
  /** The limit of each kind (the same on every host). */
  containers: Record<LimitKind, ContainerLimit>;
  /** Which fields the stack set (the rest are defaults). */
  configured: Partial<Record<LimitKind, Partial<Record<keyof ContainerLimit, true>>>>;
  /** Memory the over-commit rule allows per host: (flavor − reserved) × overcommit.memory. */
  memoryBudgetMiB: number;
  /** CPUs the rule allows per host: vCPUs × overcommit.cpu. */
  cpuBudget: number;
  /**
   * The pids limit of a container without {@link PIDS_LIMIT_LABEL} (one a job starts itself):
   * `berth:limits.defaultPids` (host layer: in each host's Ignition), default
   * {@link LIMIT_DEFAULTS}.defaultPids.
   */
  defaultPids: number;
  hosts: HostLimitsTotal[];
}

const floorMiB = (n: number) => Math.max(0, Math.floor(n));
/** Floors to Docker's 0.01 CPU step (tiny epsilon: 0.29 × 100 is 28.999…). */
export const floorCpus = (n: number) => Math.max(0, Math.floor(n * 100 + 1e-9) / 100);

/** The per-kind counts of one host of a stack. */
export function hostInventory(h: {
  name: string;
  minimal: readonly ServiceKind[];
  productionLike: readonly { kind: ServiceKind }[];
  networkHolders: number;
  registry: boolean;
  mirror: boolean;
  agents: number;
  perBuild: number;
}): HostInventory {
  const counts: Partial<Record<LimitKind, number>> = {};
  const add = (k: LimitKind, n = 1) => {
    if (n > 0) counts[k] = (counts[k] ?? 0) + n;
  };
  for (const k of h.minimal) add(k);
  for (const s of h.productionLike) add(s.kind);
  add("dnsmasq");
  add("holder", h.networkHolders);
  add("nodeExporter");
  if (h.registry) {
    add("registry");
    add("nginx");
    if (h.mirror) add("registryMirror");
  }
  add("agent", h.agents);
  add("perBuild", h.perBuild);
  return { name: h.name, counts };
}

/** Every kind's limit and every host's totals. Pure; does not judge (see {@link limitsProblems}). */
export function resolveLimits(input: LimitsInput): ResolvedLimits {
  const allocatable = input.size.memoryMiB - input.reservedMemoryMiB;
  const vcpus = input.size.vcpus;
  const memoryBudgetMiB = floorMiB(allocatable * input.overcommit.memory);
  const cpuBudget = floorCpus(vcpus * input.overcommit.cpu);
  const configured: ResolvedLimits["configured"] = {};
  const containers = {} as Record<LimitKind, ContainerLimit>;
  for (const kind of Object.keys(SERVICE_SHARES) as FixedKind[]) {
    const share = SERVICE_SHARES[kind];
    const set = input.configured[kind] ?? {};
    containers[kind] = {
      memoryMiB: set.memoryMiB ?? Math.max(share.minMemoryMiB, floorMiB(allocatable * share.memory)),
      cpus: set.cpus ?? Math.min(vcpus, Math.max(share.minCpus, floorCpus(vcpus * share.cpu))),
      pids: set.pids ?? PIDS_DEFAULTS[kind],
    };
  }
  // Builders share what the fixed kinds leave on the fullest host.
  let builderMemory = Infinity;
  let builderCpus = Infinity;
  for (const h of input.hosts) {
    const builders = (h.counts.agent ?? 0) + (h.counts.perBuild ?? 0);
    if (builders === 0) continue;
    let memory = 0;
    let cpus = 0;
    for (const [kind, count] of Object.entries(h.counts) as [LimitKind, number][]) {
      if (kind === "agent" || kind === "perBuild") continue;
      memory += containers[kind].memoryMiB * count;
      cpus += containers[kind].cpus * count;
    }
    builderMemory = Math.min(builderMemory, floorMiB((memoryBudgetMiB - memory) / builders));
    builderCpus = Math.min(builderCpus, floorCpus((cpuBudget - cpus) / builders));
  }
  const builder = {
    memoryMiB: Number.isFinite(builderMemory) ? builderMemory : floorMiB(allocatable / 2),
    cpus: Math.min(vcpus, Number.isFinite(builderCpus) ? Math.max(DOCKER_MIN_CPUS, builderCpus) : vcpus),
  };
  for (const kind of ["agent", "perBuild"] as const) {
    const set = input.configured[kind] ?? {};
    const memoryMiB = set.memoryMiB ?? builder.memoryMiB;
    containers[kind] = {
      memoryMiB,
      cpus: set.cpus ?? builder.cpus,
      pids: set.pids ?? builderPids(memoryMiB),
    };
  }
  for (const kind of LIMIT_KINDS) {
    const set = input.configured[kind];
    if (!set) continue;
    const fields: Partial<Record<keyof ContainerLimit, true>> = {};
    if (set.memoryMiB !== undefined) fields.memoryMiB = true;
    if (set.cpus !== undefined) fields.cpus = true;
    if (set.pids !== undefined) fields.pids = true;
    configured[kind] = fields;
  }
  const hosts = input.hosts.map<HostLimitsTotal>((h) => {
    const parts = LIMIT_KINDS.filter((k) => (h.counts[k] ?? 0) > 0).map((kind) => ({
      kind,
      count: h.counts[kind] ?? 0,
      limit: containers[kind],
    }));
    return {
      name: h.name,
      memoryMiB: parts.reduce((s, p) => s + p.count * p.limit.memoryMiB, 0),
      cpus: Math.round(parts.reduce((s, p) => s + p.count * p.limit.cpus, 0) * 100) / 100,
      parts,
    };
  });
  const defaultPids = input.defaultPids ?? LIMIT_DEFAULTS.defaultPids;
  return { containers, configured, memoryBudgetMiB, cpuBudget, defaultPids, hosts };
}

/** One problem of the limits: the field path (as the user writes it) and the message with its fix. */
export interface LimitsProblem {
  path: string;
  message: string;
}

const field = (kind: LimitKind, f: keyof ContainerLimit) => `berth:limits.containers.${kind}.${f}`;
const fmtCpus = (n: number) => String(Math.round(n * 100) / 100);

/**
 * The over-commit rule and the sizes a host cannot give: per host, the memory limits must add up
 * to at most (flavor memory − reservedMemoryMiB) × overcommit.memory, the CPU limits to at most
 * vCPUs × overcommit.cpu; no container may ask for more CPUs than the host has; builders must get
 * at least {@link BUILDER_MIN_MEMORY_MIB}.
 */
export function limitsProblems(
  input: LimitsInput,
  r: ResolvedLimits = resolveLimits(input),
): LimitsProblem[] {
  const problems: LimitsProblem[] = [];
  const { size, flavor } = input;
  if (input.reservedMemoryMiB >= size.memoryMiB) {
    problems.push({
      path: "berth:limits.reservedMemoryMiB",
      message: `${input.reservedMemoryMiB} MiB leaves nothing of flavor ${flavor}'s ${size.memoryMiB} MiB for containers; lower it or use a bigger flavor`,
    });
    return problems;
  }
  for (const kind of LIMIT_KINDS) {
    const c = r.containers[kind];
    if (c.cpus > size.vcpus)
      problems.push({
        path: field(kind, "cpus"),
        message: `${fmtCpus(c.cpus)} CPUs is more than flavor ${flavor} has (${size.vcpus} vCPUs); Docker refuses it. Use at most ${size.vcpus}`,
      });
  }
  for (const kind of ["agent", "perBuild"] as const) {
    const used = input.hosts.some((h) => (h.counts[kind] ?? 0) > 0);
    if (!used || r.configured[kind]?.memoryMiB) continue;
    const got = r.containers[kind].memoryMiB;
    if (got < BUILDER_MIN_MEMORY_MIB)
      problems.push({
        path: field(kind, "memoryMiB"),
        message: `the default gives each builder (agent, per-build container) ${got} MiB, what flavor ${flavor} leaves after the services; a build needs at least ${BUILDER_MIN_MEMORY_MIB} MiB: use a bigger flavor (or declare berth:hosts.flavorSize), fewer agents or a lower berth:jenkins.perBuild.instanceCap, or lower the services' limits`,
      });
  }
  const describe = (h: HostLimitsTotal, f: keyof ContainerLimit, unit: string) =>
    h.parts
      .map(
        (p) =>
          `${p.count > 1 ? `${p.count} × ` : ""}${f === "cpus" ? fmtCpus(p.limit.cpus) : p.limit.memoryMiB}${unit} ${p.kind} (${field(p.kind, f)}${r.configured[p.kind]?.[f] ? "" : ", default"})`,
      )
      .join(" + ");
  const allocatable = size.memoryMiB - input.reservedMemoryMiB;
  for (const h of r.hosts) {
    if (h.memoryMiB > r.memoryBudgetMiB) {
      const needed = Math.ceil((h.memoryMiB / allocatable) * 100) / 100;
      problems.push({
        path: "berth:limits.containers",
        message:
          `on ${h.name} the memory limits add up to ${h.memoryMiB} MiB: ${describe(h, "memoryMiB", " MiB")}; ` +
          `that is over (${size.memoryMiB} MiB of flavor ${flavor} − ${input.reservedMemoryMiB} MiB berth:limits.reservedMemoryMiB) × ${input.overcommit.memory} berth:limits.overcommit.memory = ${r.memoryBudgetMiB} MiB. ` +
          `Lower them by ${h.memoryMiB - r.memoryBudgetMiB} MiB in total, use a bigger flavor, or accept the over-commit with berth:limits.overcommit.memory: ${needed}`,
      });
    }
    if (h.cpus > r.cpuBudget + 1e-9) {
      const needed = Math.ceil((h.cpus / size.vcpus) * 100) / 100;
      problems.push({
        path: "berth:limits.containers",
        message:
          `on ${h.name} the CPU limits add up to ${fmtCpus(h.cpus)} CPUs: ${describe(h, "cpus", "")}; ` +
          `that is over ${size.vcpus} vCPUs of flavor ${flavor} × ${input.overcommit.cpu} berth:limits.overcommit.cpu = ${fmtCpus(r.cpuBudget)}. ` +
          `Lower them by ${fmtCpus(h.cpus - r.cpuBudget)} CPUs in total, use a bigger flavor, or accept the over-commit with berth:limits.overcommit.cpu: ${needed}`,
      });
    }
  }
  return problems;
}
