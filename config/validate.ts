/**
 * Validation of the raw `berth:*` configuration: JSON Schema (ajv, all errors, no unknown keys,
 * defaults applied) plus the checks a schema cannot express (addresses inside subnets, overlaps,
 * port ranges, duplicates). Every problem is collected into one `ConfigError`.
 */
import { Ajv, type ErrorObject } from "ajv";
import addFormatsModule from "ajv-formats";
import { berthSchema, FORMAT_HINTS } from "./schema.ts";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { type Cidr, cidrContains, formatIpv4, parseCidr, parseIpv4 } from "./net.ts";
import { MIN_SERVICES_PREFIX, servicesDynamicRange } from "./addresses.ts";
import { networkIssues } from "./validate-network.ts";
import { isSshPublicKey } from "./sshkey.ts";
import { IMAGE_DIGEST_PATTERN } from "./images.ts";
import { inputIssues } from "./validate-input.ts";
import { editDistance } from "./edit-distance.ts";
import { limitsIssues } from "./validate-limits.ts";
import { slotIssues } from "./validate-slots.ts";
import { isObj, get, type Obj } from "./raw.ts";
import type { BerthValidated } from "./schema-types.ts";

// ajv-formats is CommonJS; under ESM its default export is the module object.
type AddFormats = (ajv: Ajv, formats: string[]) => Ajv;
const formatsModule = addFormatsModule as unknown as AddFormats | { default: AddFormats };
const addFormats: AddFormats = typeof formatsModule === "function" ? formatsModule : formatsModule.default;

const ajv = new Ajv({ allErrors: true, useDefaults: true, discriminator: true, strict: true, verbose: true });
addFormats(ajv, ["ipv4", "hostname", "uri"]);
ajv.addFormat("cidr4", { type: "string", validate: (s: string) => parseCidr(s)?.hostBits === false });
ajv.addFormat("ssh-public-key", { type: "string", validate: isSshPublicKey });
ajv.addFormat("image-digest", { type: "string", validate: (s: string) => IMAGE_DIGEST_PATTERN.test(s) });
/** A type guard: what passes is the schema's type, with its defaults applied (config/schema-types.ts). */
const validateSchema = ajv.compile<BerthValidated>(berthSchema);

/** `/hosts/sshKeys/0` → `berth:hosts.sshKeys[0]`. */
export function userPath(instancePath: string, child?: string): string {
  const parts = instancePath.split("/").filter((p) => p !== "");
  if (child !== undefined) parts.push(child);
  if (parts.length === 0) return "berth";
  let out = `berth:${parts[0]}`;
  for (const p of parts.slice(1)) out += /^\d+$/.test(p) ? `[${p}]` : `.${p}`;
  return out;
}

function suggest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, c);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  return `a ${typeof v}`;
}

interface SchemaNode {
  properties?: Record<string, SchemaNode & { description?: string; format?: string }>;
  description?: string;
  format?: string;
}

function describeExpected(node: (SchemaNode & { type?: unknown; enum?: unknown[] }) | undefined): string {
  if (!node) return "";
  if (node.format && FORMAT_HINTS[node.format]) return ` (${FORMAT_HINTS[node.format]})`;
  if (node.enum) return ` (one of ${node.enum.map((e) => show(e)).join(", ")})`;
  if (node.description) return ` (${node.description})`;
  if (typeof node.type === "string") return ` (${node.type})`;
  return "";
}

function translate(errors: ErrorObject[]): ConfigIssue[] {
  // Errors under an anyOf/oneOf (the secret form) are summarised by the anyOf error itself.
  const unions = errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf");
  const issues: ConfigIssue[] = [];
  for (const e of errors) {
    if (unions.some((u) => u !== e && e.schemaPath.startsWith(u.schemaPath + "/"))) continue;
    const here = userPath(e.instancePath);
    const parent = e.parentSchema as SchemaNode | undefined;
    switch (e.keyword) {
      case "additionalProperties": {
        const key = String((e.params as { additionalProperty: string }).additionalProperty);
        const known = Object.keys(parent?.properties ?? {});
        const guess = suggest(key, known);
        issues.push({
          path: userPath(e.instancePath, key),
          message:
            `unknown key` +
            (guess
              ? `; did you mean "${guess}"? Rename it.`
              : `; remove it. Known keys here: ${known.join(", ")}.`),
        });
        break;
      }
      case "required": {
        const key = String((e.params as { missingProperty: string }).missingProperty);
        issues.push({
          path: userPath(e.instancePath, key),
          message: `missing required key${describeExpected(parent?.properties?.[key])}`,
        });
        break;
      }
      case "type":
        issues.push({
          path: here,
          message: `must be ${(e.params as { type: string }).type}, got ${jsonType(e.data)} ${show(e.data)}`,
        });
        break;
      case "format": {
        const f = String((e.params as { format: string }).format);
        issues.push({ path: here, message: `must be ${FORMAT_HINTS[f] ?? f}, got ${show(e.data)}` });
        break;
      }
      case "minimum":
      case "maximum":
        issues.push({
          path: here,
          message: `must be ${(e.params as { comparison: string }).comparison} ${(e.params as { limit: number }).limit}, got ${show(e.data)}`,
        });
        break;
      case "minItems":
        issues.push({ path: here, message: `must list at least ${(e.params as { limit: number }).limit}` });
        break;
      case "maxItems":
        issues.push({ path: here, message: `must list at most ${(e.params as { limit: number }).limit}` });
        break;
      case "minLength":
        issues.push({ path: here, message: `must not be empty` });
        break;
      case "uniqueItems":
        issues.push({ path: here, message: `must not repeat items, got ${show(e.data)}` });
        break;
      case "enum":
        issues.push({
          path: here,
          message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => show(v)).join(", ")}, got ${show(e.data)}`,
        });
        break;
      case "const":
        issues.push({
          path: here,
          message: `must be ${show((e.params as { allowedValue: unknown }).allowedValue)}`,
        });
        break;
      case "pattern":
        issues.push({
          path: here,
          message: `got ${show(e.data)}, which does not match ${(e.params as { pattern: string }).pattern}`,
        });
        break;
      case "discriminator":
        issues.push({
          path: userPath(e.instancePath, "mode"),
          message: `must be "self-signed" or "provided"`,
        });
        break;
      case "anyOf":
        issues.push({
          path: here,
          message: `must be a non-empty string or a secret ({ secure: "v1:..." } as written by \`pulumi config set --secret\`), got ${show(e.data)}`,
        });
        break;
      default:
        issues.push({ path: here, message: e.message ?? "is invalid" });
    }
  }
  return issues;
}

/**
 * Whether the containers that take a dynamic address on a host's `ci-services` network fit in its
 * dynamic range: every host's `agentsPerHost` agents and `networkHolders`, and on a per-build host up
 * to `perBuild.instanceCap` build containers (the cloud's `containerCap`). Docker would refuse the
 * next container with "no available IPv4 addresses"; this says so before anything is registered.
 */
function capacityIssues(raw: Obj, subnetRaw: string, dynamic: Cidr & { room: number }): ConfigIssue[] {
  const agents = get(raw, "jenkins", "agentsPerHost");
  const holders = get(raw, "services", "networkHolders");
  const perBuild = get(raw, "jenkins", "perBuild", "enabled") === true;
  const cap = get(raw, "jenkins", "perBuild", "instanceCap");
  if (typeof agents !== "number" || !Array.isArray(holders)) return [];
  const claims: { count: number; what: string; key: string }[] = [];
  if (perBuild) {
    if (typeof cap !== "number") return [];
    claims.push({ count: cap, what: "per-build container", key: "berth:jenkins.perBuild.instanceCap" });
  }
  claims.push(
    { count: agents, what: "agent", key: "berth:jenkins.agentsPerHost" },
    { count: holders.length, what: "network holder", key: "berth:services.networkHolders" },
  );
  // Each application slot: its front, its live application and, during a deploy, the new one.
  const slots = get(raw, "services", "slots");
  if (Array.isArray(slots) && slots.length > 0)
    claims.push({ count: 3 * slots.length, what: "slot container", key: "berth:services.slots (3 each)" });
  const need = claims.reduce((sum, c) => sum + c.count, 0);
  if (need <= dynamic.room) return [];
  // The smallest subnet whose upper half, less its broadcast address, holds `need`.
  const prefix = 32 - Math.ceil(Math.log2(2 * (need + 1)));
  const first = formatIpv4(dynamic.network);
  const last = formatIpv4(dynamic.network + dynamic.size - 2);
  return [
    {
      path: perBuild ? "berth:jenkins.perBuild.instanceCap" : "berth:jenkins.agentsPerHost",
      message:
        `${claims.map((c) => `${c.count} ${c.what}${c.count === 1 ? "" : "s"} (${c.key})`).join(" + ")} ` +
        `need ${need} addresses on ${perBuild ? "a per-build host's" : "each host's"} ci-services network, ` +
        `but berth:services.subnet ${subnetRaw} hands out ${dynamic.room} (${first}-${last}: its upper half, less the broadcast address); ` +
        `lower them by ${need - dynamic.room} in total, or use a /${prefix} or larger subnet`,
    },
  ];
}

/** Checks a JSON Schema cannot express. Defensive: the data may also have schema errors. */
function semanticIssues(raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const subnetRaw = get(raw, "services", "subnet");
  const subnet = typeof subnetRaw === "string" ? parseCidr(subnetRaw) : undefined;
  if (subnet && !subnet.hostBits) {
    // Containers without a fixed address take theirs from the upper half; fixed ones stay below it.
    // (Subnets smaller than that are refused by networkIssues.)
    const dynamic = subnet.prefix <= MIN_SERVICES_PREFIX ? servicesDynamicRange(subnet) : undefined;
    const dynamicIssue = (path: string, ip: number): ConfigIssue | undefined =>
      dynamic && cidrContains(dynamic, ip)
        ? {
            path,
            message: `${formatIpv4(ip)} is in ${formatIpv4(dynamic.network)}/${dynamic.prefix}, the upper half of berth:services.subnet, which ci-services hands out to agents, network holders and build containers; use an address below ${formatIpv4(dynamic.network)}`,
          }
        : undefined;
    const reserved = new Map<number, string>([
      [subnet.network, "the network address"],
      [subnet.network + 1, "the gateway"],
      [subnet.network + subnet.size - 1, "the broadcast address"],
    ]);
    const dnsRaw = get(raw, "services", "dnsAddress");
    const dns = typeof dnsRaw === "string" ? parseIpv4(dnsRaw) : subnet.network + 2;
    if (dns !== undefined) {
      const inDynamic = dynamicIssue("berth:services.dnsAddress", dns);
      if (!cidrContains(subnet, dns) || reserved.has(dns))
        issues.push({
          path: "berth:services.dnsAddress",
          message: `must be a usable address inside berth:services.subnet (${subnetRaw})`,
        });
      else if (inDynamic) issues.push(inDynamic);
      else reserved.set(dns, "the dnsmasq address");
    }
    const services = get(raw, "services", "productionLike");
    if (Array.isArray(services)) {
      const names = new Map<string, number>();
      services.forEach((s, i) => {
        const path = `berth:services.productionLike[${i}]`;
        const name = get(s, "name");
        if (typeof name === "string") {
          const prev = names.get(name);
          if (prev !== undefined)
            issues.push({ path: `${path}.name`, message: `repeats productionLike[${prev}] "${name}"` });
          else names.set(name, i);
        }
        const addrRaw = get(s, "address");
        const addr = typeof addrRaw === "string" ? parseIpv4(addrRaw) : undefined;
        if (addr === undefined) return;
        if (!cidrContains(subnet, addr))
          issues.push({
            path: `${path}.address`,
            message: `${addrRaw} is outside berth:services.subnet (${subnetRaw})`,
          });
        else if (reserved.has(addr))
          issues.push({ path: `${path}.address`, message: `${addrRaw} is already ${reserved.get(addr)}` });
        else {
          const inDynamic = dynamicIssue(`${path}.address`, addr);
          if (inDynamic) issues.push(inDynamic);
          else reserved.set(addr, `used by productionLike[${i}]`);
        }
      });
    }
    if (dynamic) issues.push(...capacityIssues(raw, String(subnetRaw), dynamic));
  }

  const basePort = get(raw, "jenkins", "basePort");
  const agents = get(raw, "jenkins", "agentsPerHost");
  if (typeof basePort === "number" && typeof agents === "number" && basePort + agents > 65535)
    issues.push({
      path: "berth:jenkins.basePort",
      message: `leaves no room for ${agents} agents below 65535`,
    });
  const agentKey = get(raw, "jenkins", "agentPublicKey");
  if (typeof agentKey === "string" && isSshPublicKey(agentKey) && !agentKey.startsWith("ssh-"))
    issues.push({
      path: "berth:jenkins.agentPublicKey",
      message: `the jenkins/ssh-agent image only accepts keys whose type starts with "ssh-" (ssh-ed25519, ssh-rsa)`,
    });

  const users = get(raw, "registry", "users");
  if (Array.isArray(users)) {
    const seen = new Set<string>();
    users.forEach((u, i) => {
      const n = get(u, "name");
      if (typeof n !== "string") return;
      if (seen.has(n))
        issues.push({ path: `berth:registry.users[${i}].name`, message: `repeats user "${n}"` });
      seen.add(n);
    });
  }
  const mirrorPort = get(raw, "registry", "pullThroughCache", "port");
  if (mirrorPort === 443)
    issues.push({ path: "berth:registry.pullThroughCache.port", message: "443 is the registry's own port" });
  return issues;
}

/**
 * Validates and defaults the raw `berth:*` values (keys without the `berth:` prefix). Returns the
 * defaulted copy, typed by the schema; throws one `ConfigError` listing every problem.
 */
export function validateRaw(stack: string, source: string, raw: unknown): BerthValidated {
  const data: unknown = structuredClone(raw ?? {});
  const renamed = renamedKeyIssues(data);
  const valid = validateSchema(data);
  const issues = [...renamed, ...(valid ? [] : translate(validateSchema.errors ?? []))];
  if (isObj(data))
    issues.push(
      ...semanticIssues(data),
      ...networkIssues(data),
      ...inputIssues(stack, data),
      ...limitsIssues(stack, data),
      ...slotIssues(data),
    );
  if (!valid || issues.length > 0) {
    if (!isObj(data)) issues.push({ path: "berth", message: "the stack has no berth:* configuration" });
    throw new ConfigError(stack, source, dedupe(issues));
  }
  return data;
}

/**
 * Keys Berth renamed. Each is refused with one message saying what to write instead; the value is
 * moved to the new key in `data` (when that is not given too), so the other checks still run on it
 * and report nothing twice.
 */
function renamedKeyIssues(data: unknown): ConfigIssue[] {
  const dns = get(data, "dns");
  if (!isObj(dns) || !("searchDomain" in dns)) return [];
  const old = dns.searchDomain;
  delete dns.searchDomain;
  const both = "searchDomains" in dns;
  const list = typeof old === "string" ? [old] : Array.isArray(old) ? old.map(String) : undefined;
  if (!both && list) dns.searchDomains = list;
  const value = (list ?? ["ci.example.internal"]).join(", ");
  return [
    {
      path: "berth:dns.searchDomain",
      message: both
        ? "was renamed to berth:dns.searchDomains, which is given too; remove berth:dns.searchDomain"
        : `was renamed to berth:dns.searchDomains, a list (first preferred): write \`searchDomains: [${value}]\` under berth:dns instead`,
    },
  ];
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
