/**
 * Validation of the resource limits (config/limits.ts) on the defaulted `berth:*` values: the
 * flavor's size must be known, and every host's limits must fit its flavor under the over-commit
 * factors. Pure and defensive (runs even when other fields have schema errors: then it says
 * nothing rather than guess).
 */
import type { ConfigIssue } from "./errors.ts";
import {
  KNOWN_FLAVORS,
  LIMIT_KINDS,
  type ContainerLimit,
  type FlavorSize,
  type LimitKind,
  type LimitsInput,
  hostInventory,
  limitsProblems,
} from "./limits.ts";
import { isServiceKind, type ServiceKind } from "./images.ts";
import { isObj, get, int, num, type Obj } from "./raw.ts";

/** The flavor's size: declared, or from the table of known flavors; undefined when neither. */
export function flavorSizeOf(flavor: string, declared: unknown): FlavorSize | undefined {
  const memoryMiB = int(get(declared, "memoryMiB"));
  const vcpus = int(get(declared, "vcpus"));
  if (memoryMiB !== undefined && vcpus !== undefined) return { memoryMiB, vcpus };
  return KNOWN_FLAVORS[flavor];
}

/**
 * The limits input of a stack's defaulted values, or an issue saying why it cannot be computed
 * (unknown flavor), or undefined when other fields are broken (their own issues say so).
 */
export function limitsInputOf(stack: string, data: Obj): LimitsInput | ConfigIssue | undefined {
  const flavor = get(data, "hosts", "flavor");
  const count = int(get(data, "hosts", "count"));
  if (typeof flavor !== "string" || count === undefined || count < 1) return undefined;
  const declared = get(data, "hosts", "flavorSize");
  const size = flavorSizeOf(flavor, declared);
  if (!size) {
    if (declared !== undefined) return undefined; // its schema error says what is wrong
    return {
      path: "berth:hosts.flavorSize",
      message: `is needed: flavor ${JSON.stringify(flavor)} is not one of the flavors Berth knows (${Object.keys(KNOWN_FLAVORS).join(", ")}), so the containers' default limits cannot be sized. Declare it as in \`openstack flavor show ${flavor}\`: berth:hosts.flavorSize: { memoryMiB: <RAM in MiB>, vcpus: <vCPUs> }`,
    };
  }
  const reservedMemoryMiB = int(get(data, "limits", "reservedMemoryMiB"));
  const memory = num(get(data, "limits", "overcommit", "memory"));
  const cpu = num(get(data, "limits", "overcommit", "cpu"));
  if (reservedMemoryMiB === undefined || memory === undefined || cpu === undefined) return undefined;
  const defaultPids = int(get(data, "limits", "defaultPids"));
  const configured: LimitsInput["configured"] = {};
  for (const kind of LIMIT_KINDS) {
    const set = get(data, "limits", "containers", kind);
    if (!isObj(set)) continue;
    const c: Partial<ContainerLimit> = {};
    const m = int(set.memoryMiB);
    const cp = num(set.cpus);
    const pids = int(set.pids);
    if (m !== undefined) c.memoryMiB = m;
    if (cp !== undefined) c.cpus = cp;
    if (pids !== undefined) c.pids = pids;
    configured[kind] = c;
  }
  const kinds = (v: unknown): ServiceKind[] => (Array.isArray(v) ? v.filter(isServiceKind) : []);
  const minimal = kinds(get(data, "services", "minimal"));
  const productionLike = kinds(
    (Array.isArray(get(data, "services", "productionLike"))
      ? (get(data, "services", "productionLike") as unknown[])
      : []
    ).map((s) => get(s, "kind")),
  ).map((kind) => ({ kind }));
  const holders = get(data, "services", "networkHolders");
  const agents = int(get(data, "jenkins", "agentsPerHost")) ?? 0;
  const perBuildOn = get(data, "jenkins", "perBuild", "enabled") === true;
  const cap = int(get(data, "jenkins", "perBuild", "instanceCap")) ?? 0;
  const listed = get(data, "jenkins", "perBuild", "hosts");
  const mirror = isObj(get(data, "registry", "pullThroughCache"));
  const names = Array.from({ length: count }, (_, i) => `${stack}-ci-${i + 1}`);
  return {
    flavor,
    size,
    reservedMemoryMiB,
    overcommit: { memory, cpu },
    configured,
    ...(defaultPids !== undefined ? { defaultPids } : {}),
    hosts: names.map((name, i) =>
      hostInventory({
        name,
        minimal,
        productionLike,
        // Each application slot's front has a holder's limits (components/slots.ts).
        networkHolders: (Array.isArray(holders) ? holders.length : 0) + slotCount(data),
        registry: i === 0,
        mirror,
        agents,
        perBuild: perBuildOn && (!Array.isArray(listed) || listed.includes(name)) ? cap : 0,
      }),
    ),
  };
}

/** The limits' issues of a stack's defaulted values. */
export function limitsIssues(stack: string, data: Obj): ConfigIssue[] {
  const input = limitsInputOf(stack, data);
  if (input === undefined) return [];
  if (!("size" in input)) return [input];
  return limitsProblems(input);
}

export type { LimitKind };

/** Application slots (`berth:services.slots`): one front per slot on every host. */
function slotCount(data: Obj): number {
  const slots = get(data, "services", "slots");
  return Array.isArray(slots) ? slots.length : 0;
}
