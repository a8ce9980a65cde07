/**
 * Cross-field checks of a stack's input that would otherwise fail at boot, at deploy or in
 * `berth plan`: ports a host binds twice, container names taken twice, SSH keys without a usable
 * key, time zones outside the tz database, control characters in names, DNS names too long for
 * DNS, provided TLS material that is not what it claims, bcrypt's 72-byte limit, stack names that
 * cannot name hosts, namespace typos and `extraIgnition` paths outside the project.
 *
 * Pure and defensive: runs on the defaulted values even when they also have schema errors, and
 * returns issues (field path + fix) instead of throwing. docs/configuration.md, "Cross-field rules",
 * lists every rule.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, realpathSync } from "node:fs";
import { isAbsolute, relative, resolve as resolvePath } from "node:path";
import type { ConfigIssue } from "./errors.ts";
import { SERVICE_CATALOG, isServiceKind } from "./images.ts";
import { MAX_SEARCH_LIST_CHARS } from "./schema.ts";
import {
  DEFAULT_DOCKER_TLS_PORT,
  EPHEMERAL_PORTS,
  HOST_SSH_PORT,
  METRICS_PORTS,
  REGISTRY_HTTPS_PORT,
  agentPort,
} from "./ports.ts";
import {
  DNSMASQ_CONTAINER,
  NODE_EXPORTER_CONTAINER,
  REGISTRY_CONTAINER,
  REGISTRY_MIRROR_CONTAINER,
  REGISTRY_NGINX_CONTAINER,
  agentContainer,
  isAgentContainerName,
  minimalContainer,
} from "./containers.ts";
import { sshKeyProblem } from "./sshkey.ts";
import type { ServiceKind } from "./types.ts";
import { editDistance } from "./edit-distance.ts";
import { isObj, get, int, type Obj } from "./raw.ts";

/** All checks of this module on the (defaulted) `berth:*` values of stack `stack`. */
export function inputIssues(stack: string, data: Obj): ConfigIssue[] {
  return [
    ...stackNameIssues(stack, data),
    ...textIssues(data),
    ...sshKeyIssues(data),
    ...timezoneIssues(data),
    ...dnsNameIssues(data),
    ...tlsIssues(data),
    ...passwordIssues(data),
    ...portIssues(stack, data),
    ...containerNameIssues(data),
  ];
}

// --- stack name ------------------------------------------------------------------------------

/** Host names are `<stack>-ci-<n>`: one DNS label (RFC 1123), lowercase, at most 63 characters. */
export const DNS_LABEL_MAX = 63;
export const DNS_NAME_MAX = 253;
const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function stackNameIssues(stack: string, data: Obj): ConfigIssue[] {
  const path = "stack name";
  if (!LABEL.test(stack))
    return [
      {
        path,
        message: `${JSON.stringify(stack)} cannot name hosts (<stack>-ci-<n> must be a DNS label): use lowercase letters, digits and "-" only, starting and ending with a letter or digit (e.g. ${JSON.stringify(suggestLabel(stack))}); rename the stack and its stacks/Pulumi.<stack>.yaml`,
      },
    ];
  const count = int(get(data, "hosts", "count")) ?? 1;
  const longest = `${stack}-ci-${Math.max(1, count)}`;
  if (longest.length > DNS_LABEL_MAX)
    return [
      {
        path,
        message: `makes host names up to ${longest.length} characters (${longest}), but a DNS label holds at most ${DNS_LABEL_MAX}: use a stack name of at most ${DNS_LABEL_MAX - (longest.length - stack.length)} characters`,
      },
    ];
  return [];
}

function suggestLabel(s: string): string {
  const l = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return l === "" ? "qa" : l.slice(0, 40);
}

// --- control characters and stray spaces -----------------------------------------------------

/** Fields that hold PEM text: line breaks (and tabs) are part of them. */
const MULTILINE = new Set([
  "berth:registry.tls.certificate",
  "berth:registry.tls.caCertificate",
  "berth:registry.tls.privateKey",
  "berth:logs.forward.serverCa",
]);
/** Names OpenStack looks up exactly: a leading or trailing space finds nothing at deploy time. */
const LOOKUP_NAMES = [
  ["openstack", "image"],
  ["openstack", "externalNetwork"],
  ["openstack", "floatingIpPool"],
  ["openstack", "availabilityZone"],
  ["hosts", "flavor"],
  ["hosts", "dockerVolumeType"],
] as const;

function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  const names: Record<number, string> = {
    0: "a NUL",
    9: "a tab",
    10: "a line break",
    13: "a carriage return",
  };
  return `${names[code] ?? "a control character"} (${hex})`;
}

/** C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. */
function isControl(c: string): boolean {
  const code = c.codePointAt(0) ?? 0;
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

function textIssues(data: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === "string") {
      const multiline = MULTILINE.has(path);
      const bad = [...v].find(
        (c) => isControl(c) && !(multiline && (c === "\n" || c === "\r" || c === "\t")),
      );
      if (bad !== undefined)
        issues.push({
          path,
          message: `contains ${describeChar(bad)}; ${multiline ? "PEM text holds only printable characters and line breaks" : "names and values are one line of printable characters"}: remove it (check how the value was pasted)`,
        });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (isObj(v)) {
      // A secret's ciphertext is Pulumi's business.
      if (Object.keys(v).length === 1 && typeof v.secure === "string") return;
      for (const [k, x] of Object.entries(v)) walk(x, path === "berth" ? `berth:${k}` : `${path}.${k}`);
    }
  };
  walk(data, "berth");
  for (const [a, b] of LOOKUP_NAMES) {
    const v = get(data, a, b);
    if (typeof v === "string" && v !== "" && v.trim() !== v)
      issues.push({
        path: `berth:${a}.${b}`,
        message: `${JSON.stringify(v)} has leading or trailing spaces; OpenStack looks the name up exactly: remove them`,
      });
  }
  return issues;
}

// --- SSH keys ----------------------------------------------------------------------------------

function sshKeyIssues(data: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const check = (path: string, v: unknown) => {
    const problem = typeof v === "string" ? sshKeyProblem(v) : undefined;
    if (problem) issues.push({ path, message: problem });
  };
  const keys = get(data, "hosts", "sshKeys");
  if (Array.isArray(keys)) keys.forEach((k, i) => check(`berth:hosts.sshKeys[${i}]`, k));
  check("berth:jenkins.agentPublicKey", get(data, "jenkins", "agentPublicKey"));
  return issues;
}

// --- time zone ---------------------------------------------------------------------------------

let zones: Set<string> | undefined;

/**
 * Whether `tz` names a zone of the tz database: a canonical name Node's ICU lists, or an alias ICU
 * resolves (`UTC`, `Etc/UTC`, `US/Eastern`, `Asia/Calcutta`). ICU matches names case-insensitively
 * but the hosts link /etc/localtime to /usr/share/zoneinfo/<tz>, which is case-sensitive: a wrongly
 * cased name is refused, with the right spelling.
 */
export function timezoneProblem(tz: string): string | undefined {
  zones ??= new Set(Intl.supportedValuesOf("timeZone"));
  if (zones.has(tz)) return undefined;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat("en", { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return `${JSON.stringify(tz)} is not a time zone of the tz database; use a name such as "Europe/Rome" or "UTC" (\`timedatectl list-timezones\`)`;
  }
  if (resolved === tz) return undefined;
  const miscased =
    resolved.toLowerCase() === tz.toLowerCase() || !tz.split("/").every((part) => /^[A-Z]/.test(part));
  return miscased
    ? `${JSON.stringify(tz)} is not spelled as in the tz database (/usr/share/zoneinfo is case-sensitive); use ${JSON.stringify(resolved)}`
    : undefined;
}

function timezoneIssues(data: Obj): ConfigIssue[] {
  const tz = get(data, "hosts", "timezone");
  const problem = typeof tz === "string" && tz !== "" ? timezoneProblem(tz) : undefined;
  return problem ? [{ path: "berth:hosts.timezone", message: problem }] : [];
}

// --- DNS names ---------------------------------------------------------------------------------

function dnsNameIssues(data: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const dotted = (path: string, v: unknown) => {
    if (typeof v === "string" && v.length > 1 && v.endsWith("."))
      issues.push({
        path,
        message: `${JSON.stringify(v)} ends with a dot; Berth takes names without the root dot (certificates, nginx and /etc/hosts use them as written): write ${JSON.stringify(v.replace(/\.+$/, ""))}`,
      });
  };
  dotted("berth:registry.hostname", get(data, "registry", "hostname"));
  const domainsRaw = get(data, "dns", "searchDomains");
  const domains = Array.isArray(domainsRaw) ? domainsRaw : [];
  const firstIndex = new Map<string, number>();
  domains.forEach((d, i) => {
    const path = `berth:dns.searchDomains[${i}]`;
    dotted(path, d);
    if (typeof d !== "string") return;
    // DNS names are case-insensitive: `CI.example` repeats `ci.example` (the schema's uniqueItems
    // only sees identical strings).
    const key = d.toLowerCase().replace(/\.+$/, "");
    const first = firstIndex.get(key);
    if (first === undefined) firstIndex.set(key, i);
    else if (domains[first] !== d)
      issues.push({
        path,
        message: `${JSON.stringify(d)} repeats searchDomains[${first}] ${JSON.stringify(domains[first])} (DNS names ignore case); remove one`,
      });
  });
  const strings = domains.filter((d): d is string => typeof d === "string");
  const line = strings.join(" ");
  if (strings.length === domains.length && line.length > MAX_SEARCH_LIST_CHARS)
    issues.push({
      path: "berth:dns.searchDomains",
      message: `joined by spaces the list makes ${line.length} characters, but resolv.conf's search line keeps at most ${MAX_SEARCH_LIST_CHARS} (musl ignores a longer line, older glibc cuts it): use fewer or shorter domains`,
    });
  const services = get(data, "services", "productionLike");
  if (Array.isArray(services))
    services.forEach((s, i) => {
      const name = get(s, "name");
      if (typeof name !== "string") return;
      const longest = strings.reduce(
        (a, b) => (b.replace(/\.$/, "").length > a.length ? b.replace(/\.$/, "") : a),
        "",
      );
      const fqdn = `${name}.${longest}`;
      if (longest !== "" && fqdn.length > DNS_NAME_MAX)
        issues.push({
          path: `berth:services.productionLike[${i}].name`,
          message: `under berth:dns.searchDomains ${JSON.stringify(longest)} it makes ${fqdn.length} characters (${fqdn.slice(0, 40)}...), but a DNS name holds at most ${DNS_NAME_MAX}: shorten the name or the search domain`,
        });
    });
  return issues;
}

// --- provided TLS ------------------------------------------------------------------------------

const PEM_BLOCK = /-----BEGIN ([^\r\n]*?)-----([\s\S]*?)-----END ([^\r\n]*?)-----/g;

/** Parses text meant to hold only CERTIFICATE blocks; returns the certificates or the problem. */
export function parseCertificates(text: string): { certs: X509Certificate[] } | { problem: string } {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const outside = text.replace(PEM_BLOCK, "").trim();
  if (blocks.some((b) => /PRIVATE KEY/.test(b[1] ?? "")) || /PRIVATE KEY/.test(outside))
    return {
      problem:
        "contains a private key; remove it here and give it as berth:registry.tls.privateKey, a secret (pulumi config set --secret --path berth:registry.tls.privateKey < key.pem)",
    };
  if (blocks.length === 0)
    return {
      problem: "holds no PEM block; paste the certificate from -----BEGIN CERTIFICATE----- to its END line",
    };
  if (outside !== "")
    return {
      problem:
        "has text outside its -----BEGIN/END CERTIFICATE----- blocks; keep only the PEM blocks (a certificate, then its chain)",
    };
  const certs: X509Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    const [, begin, body, end] = b;
    if (begin !== "CERTIFICATE" || end !== "CERTIFICATE")
      return { problem: `block ${i + 1} is a "${begin}" block; only CERTIFICATE blocks belong here` };
    const lines = (body ?? "").split(/\r?\n/).map((l) => l.trim());
    if (lines[0] !== "" || lines.slice(1).some((l) => !/^[A-Za-z0-9+/=]*$/.test(l)))
      return {
        problem: `block ${i + 1} has text that is not base64 (right after its BEGIN line or inside); paste the certificate unchanged`,
      };
    try {
      certs.push(new X509Certificate(b[0]));
    } catch (e) {
      return { problem: `block ${i + 1} is not an X.509 certificate (${(e as Error).message})` };
    }
  }
  return { certs };
}

function tlsIssues(data: Obj): ConfigIssue[] {
  const tls = get(data, "registry", "tls");
  if (!isObj(tls) || tls.mode !== "provided") return [];
  const issues: ConfigIssue[] = [];
  let leaf: X509Certificate | undefined;
  for (const key of ["certificate", "caCertificate"] as const) {
    const v = tls[key];
    if (typeof v !== "string" || v === "") continue;
    const parsed = parseCertificates(v);
    if ("problem" in parsed) issues.push({ path: `berth:registry.tls.${key}`, message: parsed.problem });
    else if (key === "certificate") leaf = parsed.certs[0];
  }
  const hostname = get(data, "registry", "hostname");
  if (leaf && typeof hostname === "string" && hostname !== "" && leaf.checkHost(hostname) === undefined)
    issues.push({
      path: "berth:registry.tls.certificate",
      message: `is not valid for berth:registry.hostname ${hostname} (it names ${leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ", ")}); use a certificate issued for ${hostname}`,
    });
  const key = tls.privateKey;
  if (typeof key === "string" && key !== "") {
    // A plain value (a test, or decrypted by Pulumi): never echo it.
    let parsedKey: ReturnType<typeof createPrivateKey> | undefined;
    try {
      parsedKey = createPrivateKey(key);
    } catch {
      issues.push({
        path: "berth:registry.tls.privateKey",
        message:
          "is not a PEM private key (-----BEGIN PRIVATE KEY----- ...), unencrypted; give the key file nginx should use",
      });
    }
    if (parsedKey && leaf && !leaf.checkPrivateKey(parsedKey))
      issues.push({
        path: "berth:registry.tls.privateKey",
        message:
          "does not belong to berth:registry.tls.certificate; give the key the certificate was issued for",
      });
  }
  return issues;
}

// --- registry passwords ------------------------------------------------------------------------

/** bcrypt (nginx's htpasswd) hashes at most this many bytes of a password. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72;

function passwordIssues(data: Obj): ConfigIssue[] {
  const users = get(data, "registry", "users");
  if (!Array.isArray(users)) return [];
  const issues: ConfigIssue[] = [];
  users.forEach((u, i) => {
    const pw = get(u, "password");
    // Plain here; under `pulumi up` Pulumi hands over secrets decrypted, so they are checked too.
    if (typeof pw === "string" && Buffer.byteLength(pw, "utf8") > BCRYPT_MAX_PASSWORD_BYTES)
      issues.push({
        path: `berth:registry.users[${i}].password`,
        message: `is ${Buffer.byteLength(pw, "utf8")} bytes; bcrypt (the registry's htpasswd) uses at most ${BCRYPT_MAX_PASSWORD_BYTES}: use a password of at most ${BCRYPT_MAX_PASSWORD_BYTES} bytes (UTF-8), or leave it out and let the stack generate one`,
      });
  });
  return issues;
}

// --- ports -------------------------------------------------------------------------------------

export interface Bind {
  first: number;
  last: number;
  /** What binds it, for messages. */
  what: string;
  /** The key that sets it, when configurable. */
  field?: string;
  /** Ties: the issue goes to the more configurable side (higher rank). */
  rank: number;
}

const portText = (b: Bind) => (b.first === b.last ? `port ${b.first}` : `ports ${b.first}-${b.last}`);
const bindText = (b: Bind) => `${portText(b)} (${b.what}${b.field ? `, ${b.field}` : ""})`;

/**
 * Every TCP port a host binds, from the constants the components use: sshd, node_exporter and
 * dockerd's metrics, the registry (443, its metrics and the mirror's port) on the registry host, dockerd's TLS endpoint, the agents' `basePort + n`, the
 * minimal services' default ports, and on per-build hosts the range dockerd publishes build
 * agents' SSH from. A port is counted once per host whatever address it is bound on.
 */
export function hostPortTable(data: Obj, registryHost: boolean, perBuildHost: boolean): Bind[] {
  const binds: Bind[] = [
    { first: HOST_SSH_PORT, last: HOST_SSH_PORT, what: "the host's sshd", rank: 0 },
    { first: METRICS_PORTS.node, last: METRICS_PORTS.node, what: "node_exporter", rank: 0 },
    { first: METRICS_PORTS.dockerd, last: METRICS_PORTS.dockerd, what: "dockerd's metrics", rank: 0 },
  ];
  if (registryHost) {
    binds.push({
      first: METRICS_PORTS.registry,
      last: METRICS_PORTS.registry,
      what: "the registry's metrics",
      rank: 1,
    });
    binds.push({
      first: REGISTRY_HTTPS_PORT,
      last: REGISTRY_HTTPS_PORT,
      what: "the registry's HTTPS",
      rank: 1,
    });
    const mirror = int(get(data, "registry", "pullThroughCache", "port"));
    if (mirror !== undefined && mirror !== REGISTRY_HTTPS_PORT)
      binds.push({
        first: mirror,
        last: mirror,
        what: "the pull-through mirror",
        field: "berth:registry.pullThroughCache.port",
        rank: 5,
      });
  }
  const minimal = get(data, "services", "minimal");
  if (Array.isArray(minimal))
    minimal.forEach((kind, i) => {
      const spec = isServiceKind(kind) ? SERVICE_CATALOG[kind] : undefined;
      if (spec)
        binds.push({
          first: spec.port,
          last: spec.port,
          what: `the minimal set's ${kind}`,
          field: `berth:services.minimal[${i}]`,
          rank: 2,
        });
    });
  if (perBuildHost)
    binds.push({
      first: EPHEMERAL_PORTS.first,
      last: EPHEMERAL_PORTS.last,
      what: "dockerd's choice of per-build agents' SSH ports",
      field: "berth:jenkins.perBuild.enabled",
      rank: 3,
    });
  const base = int(get(data, "jenkins", "basePort"));
  const agents = int(get(data, "jenkins", "agentsPerHost"));
  if (base !== undefined && agents !== undefined && agents > 0 && agentPort(base, agents) <= 65535)
    binds.push({
      first: agentPort(base, 1),
      last: agentPort(base, agents),
      what: `the ${agents} agent${agents === 1 ? "" : "s"}, basePort + 1..agentsPerHost`,
      field: "berth:jenkins.basePort",
      rank: 4,
    });
  if (get(data, "hosts", "dockerTls") !== false) {
    const tlsPort = int(get(data, "hosts", "dockerTlsPort")) ?? DEFAULT_DOCKER_TLS_PORT;
    binds.push({
      first: tlsPort,
      last: tlsPort,
      what: "dockerd's TLS endpoint",
      field: "berth:hosts.dockerTlsPort",
      rank: 6,
    });
  }
  return binds;
}

function portIssues(stack: string, data: Obj): ConfigIssue[] {
  const count = int(get(data, "hosts", "count")) ?? 1;
  const names = Array.from({ length: Math.max(1, Math.min(count, 200)) }, (_, i) => `${stack}-ci-${i + 1}`);
  const perBuild = get(data, "jenkins", "perBuild");
  const perBuildOn = get(perBuild, "enabled") === true;
  const listed = get(perBuild, "hosts");
  const issues: ConfigIssue[] = [];
  // Host profiles: the registry host (the first) and the others, each with or without per-build.
  const profiles = new Map<string, string[]>();
  names.forEach((h, i) => {
    const pb = perBuildOn && (!Array.isArray(listed) || listed.includes(h));
    const key = `${i === 0}:${pb}`;
    profiles.set(key, [...(profiles.get(key) ?? []), h]);
  });
  for (const [key, hosts] of profiles) {
    const [reg, pb] = key.split(":").map((x) => x === "true");
    const binds = hostPortTable(data, reg === true, pb === true);
    for (const [i, a] of binds.entries())
      for (const b of binds.slice(i + 1)) {
        if (a.first > b.last || b.first > a.last) continue;
        const [mine, other] = a.rank >= b.rank ? [a, b] : [b, a];
        if (!mine.field) continue;
        const on = hosts.length === names.length ? "every host" : hosts.join(", ");
        issues.push({
          path: mine.field,
          message: `${bindText(mine)} overlaps ${bindText(other)} on ${on}; a host binds each port once: change ${mine.field}${other.field && other.field !== mine.field ? ` or ${other.field}` : ""}`,
        });
      }
  }
  return issues;
}

// --- container names ---------------------------------------------------------------------------

interface Named {
  name: string;
  what: string;
  field?: string;
}

function containerNameIssues(data: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const fixed: Named[] = [
    { name: DNSMASQ_CONTAINER, what: "the production-like set's DNS container" },
    { name: REGISTRY_CONTAINER, what: "the registry's container (registry host)" },
    { name: REGISTRY_NGINX_CONTAINER, what: "the registry's nginx container (registry host)" },
    { name: NODE_EXPORTER_CONTAINER, what: "node_exporter's container" },
  ];
  if (isObj(get(data, "registry", "pullThroughCache")))
    fixed.push({
      name: REGISTRY_MIRROR_CONTAINER,
      what: "the pull-through mirror's container (registry host)",
    });
  const minimal = get(data, "services", "minimal");
  if (Array.isArray(minimal))
    minimal.forEach((k, i) => {
      if (typeof k === "string")
        fixed.push({
          name: minimalContainer(k as ServiceKind),
          what: `the minimal set's ${k} container`,
          field: `berth:services.minimal[${i}]`,
        });
    });
  const configured: Named[] = [];
  const services = get(data, "services", "productionLike");
  if (Array.isArray(services))
    services.forEach((s, i) => {
      const n = get(s, "name");
      if (typeof n === "string")
        configured.push({
          name: n,
          what: "a production-like service",
          field: `berth:services.productionLike[${i}].name`,
        });
    });
  const holders = get(data, "services", "networkHolders");
  if (Array.isArray(holders))
    holders.forEach((n, i) => {
      if (typeof n === "string")
        configured.push({ name: n, what: "a network holder", field: `berth:services.networkHolders[${i}]` });
    });
  const agents = int(get(data, "jenkins", "agentsPerHost")) ?? 0;
  for (const [i, c] of configured.entries()) {
    const path = c.field as string;
    if (isAgentContainerName(c.name)) {
      issues.push({
        path,
        message: `${JSON.stringify(c.name)} has the form of a Jenkins agent's container name (${agentContainer(1)}..${agentContainer(Math.max(agents, 1))}, berth:jenkins.agentsPerHost); rename it`,
      });
      continue;
    }
    const clash =
      fixed.find((f) => f.name === c.name) ??
      // Repeats within one list are reported by the schema (holders) and validate.ts (services).
      configured.slice(0, i).find((o) => o.name === c.name && o.what !== c.what);
    if (clash)
      issues.push({
        path,
        message: `${JSON.stringify(c.name)} is also the name of ${clash.what}${clash.field ? ` (${clash.field})` : ""}; container names are unique on a host: rename it`,
      });
  }
  return issues;
}

// --- namespaces --------------------------------------------------------------------------------

/** Namespaces a Berth stack file may hold besides `berth`: Pulumi's and the providers' the program uses. */
export const KNOWN_NAMESPACES = ["pulumi", "openstack", "docker", "tls", "random", "command"] as const;

/**
 * Keys whose namespace is meant to be `berth` but is not (`Berth:services`, `brth:previewTtlHours`):
 * Pulumi would keep them and Berth would never read them. A namespace that is not a known one and
 * is at most one edit away from `berth`, ignoring case, is refused.
 */
export function namespaceIssues(config: Obj, namespace = "berth"): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const key of Object.keys(config)) {
    const i = key.indexOf(":");
    if (i < 0) continue;
    const ns = key.slice(0, i);
    if (ns === namespace || (KNOWN_NAMESPACES as readonly string[]).includes(ns)) continue;
    if (editDistance(ns.toLowerCase(), namespace) <= 1)
      issues.push({
        path: key,
        message: `namespace ${JSON.stringify(ns)} is not ${JSON.stringify(namespace)} (namespaces are case-sensitive), so Berth would ignore this key: rename it to ${namespace}:${key.slice(i + 1)}`,
      });
  }
  return issues;
}

// --- extraIgnition paths -----------------------------------------------------------------------

/**
 * Why an `extraIgnition` path may not be read, or `undefined`: it must be relative and stay inside
 * the project root, also once symlinks are followed (a stack file must not pull in files from
 * elsewhere on the machine that renders it).
 */
export function fragmentPathProblem(root: string, path: string): string | undefined {
  if (isAbsolute(path))
    return `${path} is absolute; give a path relative to the project root, such as snippets/<name>.json`;
  const file = resolvePath(root, path);
  const rel = relative(resolvePath(root), file);
  if (rel.startsWith("..") || isAbsolute(rel))
    return `${path} leads outside the project root; keep fragments in the repository, such as snippets/<name>.json`;
  if (!existsSync(file)) return undefined; // reported as missing by the caller
  const real = relative(realpathSync(root), realpathSync(file));
  if (real.startsWith("..") || isAbsolute(real))
    return `${path} is a symbolic link to a file outside the project root; copy the fragment into the repository instead`;
  return undefined;
}
