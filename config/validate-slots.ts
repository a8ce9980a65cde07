/**
 * Validation of application slots (`berth:services.slots`, `berth:services.slotCidrs`), pure and
 * defensive like the other cross-field checks: names, health checks and ports. The developer
 * CIDRs' exposure (world-open, whole or in pieces) and repeats are judged with every other rule's
 * sources by config/validate-network.ts, which declares one rule per slot port and CIDR.
 * docs/configuration.md, "Application slots", lists every rule.
 */
import type { ConfigIssue } from "./errors.ts";
import { SERVICE_CATALOG } from "./images.ts";
import { FIXED_SENSITIVE_PORTS } from "./ports.ts";
import { hostPortTable } from "./validate-input.ts";
import { get, int, type Obj } from "./raw.ts";

/** Prefix of every slot container's name: `slot-<name>` (front), `slot-<name>-app`, `-next`, `-old`. */
export const SLOT_CONTAINER_PREFIX = "slot-";
/** Suffixes of the containers `berth-slot deploy` names after a slot (the front has none). */
export const SLOT_CONTAINER_SUFFIXES = ["", "-app", "-next", "-old"] as const;
/**
 * Longest slot name: `slot-<name>-next` must stay one DNS label (63 characters), since the front
 * reaches the application by its container name through Docker's DNS.
 */
export const MAX_SLOT_NAME = 63 - SLOT_CONTAINER_PREFIX.length - "-next".length;
const SLOT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** Where suggestions for a free port start. */
const SUGGEST_FROM = 8080;

/** Label on slot containers: {@link SLOT_FRONT} on the program's front, {@link SLOT_APP} on what `berth-slot` starts. */
export const SLOT_LABEL = "org.berth.slot";
/** {@link SLOT_LABEL} value of a slot's front (declared by the program). */
export const SLOT_FRONT = "front";
/** {@link SLOT_LABEL} value of a slot's application containers (`berth-slot deploy`, also while one is checked as `-next`). */
export const SLOT_APP = "app";

/** A slot's front: `slot-<name>`. */
export function slotFrontName(slot: string): string {
  return `${SLOT_CONTAINER_PREFIX}${slot}`;
}
/** A slot's live application: `slot-<name>-app`. */
export function slotAppName(slot: string): string {
  return `${SLOT_CONTAINER_PREFIX}${slot}-app`;
}

/** Containers a slot's name gives on every host. */
export function slotContainerNames(name: string): string[] {
  return SLOT_CONTAINER_SUFFIXES.map((s) => `${SLOT_CONTAINER_PREFIX}${name}${s}`);
}

interface Taken {
  first: number;
  last: number;
  what: string;
  field?: string;
}

/**
 * Every port a slot must keep clear of: what the stack's hosts bind (sshd, registry, metrics,
 * dockerd's TLS port, the agents' range, the minimal set, the per-build range), every port Berth
 * knows as sensitive (config/ports.ts), and every backend service kind's port, used or not.
 */
function takenPorts(data: Obj): Taken[] {
  const perBuild = get(data, "jenkins", "perBuild", "enabled") === true;
  return [
    ...hostPortTable(data, true, perBuild).map((b) => ({
      first: b.first,
      last: b.last,
      what: b.what,
      ...(b.field ? { field: b.field } : {}),
    })),
    ...FIXED_SENSITIVE_PORTS.map((p) => ({ first: p.from, last: p.to, what: `Berth's ${p.what} port` })),
    ...Object.entries(SERVICE_CATALOG).map(([kind, spec]) => ({
      first: spec.port,
      last: spec.port,
      what: `the ${kind} service port`,
    })),
  ];
}

const portsText = (t: Taken) => (t.first === t.last ? `${t.first}` : `${t.first}-${t.last}`);

/** All slot issues of the defaulted `berth:*` values. */
export function slotIssues(data: Obj): ConfigIssue[] {
  const slots = get(data, "services", "slots");
  if (!Array.isArray(slots)) return [];
  const issues: ConfigIssue[] = [];
  const taken = takenPorts(data);
  const slotPorts = slots.map((s) => int(get(s, "port")));
  const isFree = (p: number) => !taken.some((t) => p >= t.first && p <= t.last) && !slotPorts.includes(p);
  const freePort = () => {
    for (let p = SUGGEST_FROM; p <= 65535; p++) if (isFree(p)) return p;
    return undefined;
  };

  // Names other containers of the host carry (validate-input.ts checks the rest among themselves).
  const others = new Map<string, string>();
  const productionLike = get(data, "services", "productionLike");
  if (Array.isArray(productionLike))
    productionLike.forEach((s, i) => {
      const n = get(s, "name");
      if (typeof n === "string") others.set(n, `berth:services.productionLike[${i}].name`);
    });
  const holders = get(data, "services", "networkHolders");
  if (Array.isArray(holders))
    holders.forEach((n, i) => {
      if (typeof n === "string") others.set(n, `berth:services.networkHolders[${i}]`);
    });

  const names = new Map<string, number>();
  slots.forEach((slot, i) => {
    const path = `berth:services.slots[${i}]`;
    const name = get(slot, "name");
    if (typeof name === "string" && name !== "") {
      if (!SLOT_NAME.test(name) || name.length > MAX_SLOT_NAME)
        issues.push({
          path: `${path}.name`,
          message: `${JSON.stringify(name)} is not DNS-safe: a slot's name names its containers (slot-${name}-app), which the slot's front reaches through Docker's DNS; use at most ${MAX_SLOT_NAME} lowercase letters, digits and "-", starting and ending with a letter or digit (e.g. ${JSON.stringify(suggestName(name))})`,
        });
      const prev = names.get(name);
      if (prev !== undefined)
        issues.push({
          path: `${path}.name`,
          message: `repeats berth:services.slots[${prev}].name ${JSON.stringify(name)}; slot names are unique: rename one`,
        });
      else names.set(name, i);
      for (const c of slotContainerNames(name)) {
        const clash = others.get(c);
        if (clash)
          issues.push({
            path: `${path}.name`,
            message: `gives the container name ${JSON.stringify(c)}, which ${clash} also takes; container names are unique on a host: rename one`,
          });
      }
    }

    const health = get(slot, "health");
    const http = get(health, "http");
    const command = get(health, "command");
    if (health !== undefined && (http === undefined) === (command === undefined))
      issues.push({
        path: `${path}.health`,
        message:
          http === undefined
            ? "needs a health check: give `http: /path` (an HTTP GET from the slot's front must answer 2xx or 3xx) or `command: [argv...]` (run in the application's container, must exit 0)"
            : "gives both `http` and `command`; keep one of them",
      });
    if (typeof http === "string" && !/^\/[\x21-\x7e]*$/.test(http))
      issues.push({
        path: `${path}.health.http`,
        message: `${JSON.stringify(http)} is not an HTTP path: start it with "/" and use no spaces or non-ASCII characters (percent-encode them), such as "/healthz"`,
      });

    const port = slotPorts[i];
    if (port === undefined) return;
    const hits = taken.filter((t) => port >= t.first && port <= t.last);
    const twice = slotPorts.findIndex((p) => p === port);
    if (twice !== i)
      hits.push({
        first: port,
        last: port,
        what: "another slot",
        field: `berth:services.slots[${twice}].port`,
      });
    if (hits.length === 0) return;
    const free = freePort();
    issues.push({
      path: `${path}.port`,
      message:
        `${port} collides with ${hits.map((h) => `${h.what} (${portsText(h)}${h.field ? `, ${h.field}` : ""})`).join(" and ")}; ` +
        `a slot's port is published on every host's private address and must be its own: pick another` +
        (free !== undefined ? `, such as ${free}` : ""),
    });
  });
  return issues;
}

function suggestName(s: string): string {
  const l = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, MAX_SLOT_NAME)
    .replace(/-+$/, "");
  return l === "" ? "app" : l;
}
