/**
 * Berth's policies, as plain data: `index.ts` hands them to a `PolicyPack` when Pulumi runs the pack
 * (`pulumi preview|up --policy-pack policy`); tests import this module and call each policy's
 * `validateResource` / `validateStack` directly, without starting the pack's gRPC server.
 *
 * This directory is loaded by Pulumi's policy runner (ts-node, CommonJS, `policy/package.json`). It
 * takes ports, rule purposes, the service catalog, the exposure judgement and Nova's user-data limit
 * from the program's own modules (config/ports.ts, config/images.ts, config/net.ts,
 * ignition/user-data.ts), which have no imports of their own so
 * that the runner loads them as they are; imports here are extension-less (CommonJS).
 *
 * Values Pulumi cannot know during a preview (computed outputs) make `@pulumi/policy` throw when
 * read; the checks below read them through `known()`, treat such values as "cannot tell yet" and
 * never report a violation they cannot prove. `pulumi up` runs the same checks with real values.
 */
import type {
  PolicyResource,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { SERVICE_CATALOG } from "../config/images";
import { WORLD_THRESHOLD, exposureOf, formatCount } from "../config/net";
import { FIXED_SENSITIVE_PORTS, type PortRange, purposeOfDescription, purposeWhat } from "../config/ports";
import { NOVA_USER_DATA_LIMIT_BYTES } from "../ignition/user-data";

export const TYPES = {
  secGroupRule: "openstack:networking/secGroupRule:SecGroupRule",
  instance: "openstack:compute/instance:Instance",
  blockVolume: "openstack:blockstorage/volume:Volume",
  container: "docker:index/container:Container",
  remoteImage: "docker:index/remoteImage:RemoteImage",
  dockerVolume: "docker:index/volume:Volume",
} as const;

/**
 * Ports no ingress rule may open to the world, each with what listens there: the program's fixed
 * ports (config/ports.ts: SSH, Docker API, registry, the mirror's and agents' defaults, the
 * per-build range) and the service catalog's ports (config/images.ts). Ports a stack configures
 * differently are recognised from Berth's own rules (their description names their purpose) and,
 * stack-wide, from the ports its containers publish.
 */
export const SENSITIVE_PORTS: readonly PortRange[] = [
  ...FIXED_SENSITIVE_PORTS,
  ...Object.entries(SERVICE_CATALOG).map(([kind, spec]) => ({ from: spec.port, to: spec.port, what: kind })),
];

/** Nova's limit on user data, base64-encoded: the host layer's own limit (ignition/user-data.ts). */
export const MAX_USER_DATA_BASE64 = NOVA_USER_DATA_LIMIT_BYTES;

export const DIGEST_PINNED = /^[^\s@]+@sha256:[a-f0-9]{64}$/;
/** A local image ID (`docker inspect` ID): content-addressed, so as pinned as a digest. */
export const IMAGE_ID = /^sha256:[a-f0-9]{64}$/;

// --- helpers -------------------------------------------------------------------------------------

const UNKNOWN: unique symbol = Symbol("unknown");
type Maybe<T> = T | undefined | typeof UNKNOWN;

/**
 * Reads `obj[key]`; `UNKNOWN` when the value is not known yet (during a preview `@pulumi/policy`'s
 * proxy throws on reading a computed value), `undefined` when absent.
 */
function known(obj: unknown, key: string): Maybe<unknown> {
  if (typeof obj !== "object" || obj === null) return undefined;
  try {
    return (obj as Record<string, unknown>)[key];
  } catch {
    return UNKNOWN;
  }
}

function knownString(obj: unknown, key: string): Maybe<string> {
  const v = known(obj, key);
  if (v === UNKNOWN) return UNKNOWN;
  if (v === undefined || v === null) return undefined;
  return typeof v === "string" ? v : String(v);
}

function knownNumber(obj: unknown, key: string): Maybe<number> {
  const v = known(obj, key);
  if (v === UNKNOWN) return UNKNOWN;
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Elements of an array property; `UNKNOWN` when the array (or its length) is not known. */
function knownArray(obj: unknown, key: string): Maybe<unknown[]> {
  const v = known(obj, key);
  if (v === UNKNOWN) return UNKNOWN;
  if (!Array.isArray(v)) return undefined;
  try {
    return Array.from({ length: v.length }, (_, i) => {
      try {
        return v[i] as unknown;
      } catch {
        return UNKNOWN;
      }
    });
  } catch {
    return UNKNOWN;
  }
}

/** The stack of a resource, from its URN (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
export function stackOfUrn(urn: string): string | undefined {
  const m = /^urn:pulumi:([^:]+)::/.exec(urn);
  return m?.[1];
}

function describePorts(from: number, to: number): string {
  return from === to ? `port ${from}` : `ports ${from}-${to}`;
}

// --- (a) no world-open ingress to sensitive ports ------------------------------------------------

/** One ingress rule as far as it is known: ports, source, and what it exposes. */
interface IngressView {
  urn: string;
  name: string;
  proto: string;
  from: number;
  to: number;
  /** The source prefix; `undefined` when the rule admits any address (no prefix, no group). */
  prefix: string | undefined;
  /** What the rule itself says it exposes, when it is one of Berth's rules. */
  own: PortRange | undefined;
}

/** Reads an ingress TCP/UDP rule; `undefined` when it is not one or cannot be read yet (preview). */
function ingressView(name: string, urn: string, p: unknown): IngressView | undefined {
  const direction = knownString(p, "direction");
  if (direction === UNKNOWN || direction !== "ingress") return undefined;
  const protocol = knownString(p, "protocol");
  if (protocol === UNKNOWN) return undefined;
  // Only TCP/UDP rules (or "any protocol") carry ports.
  const proto = (protocol ?? "").toLowerCase();
  if (proto !== "" && proto !== "tcp" && proto !== "udp" && proto !== "6" && proto !== "17") return undefined;
  const prefix = knownString(p, "remoteIpPrefix");
  const group = knownString(p, "remoteGroupId");
  if (prefix === UNKNOWN || group === UNKNOWN) return undefined;
  // No prefix: the members of remoteGroupId if set, otherwise any address.
  if ((prefix === undefined || prefix === "") && group !== undefined && group !== "") return undefined;
  const min = knownNumber(p, "portRangeMin");
  const max = knownNumber(p, "portRangeMax");
  if (min === UNKNOWN || max === UNKNOWN) return undefined;
  // Neutron: no range (or 0) means every port.
  const from = min === undefined || min === 0 ? 1 : min;
  const to = max === undefined || max === 0 ? 65535 : max;
  const description = knownString(p, "description");
  const purpose = typeof description === "string" ? purposeOfDescription(description) : undefined;
  const what = purpose !== undefined ? purposeWhat(purpose) : undefined;
  return {
    urn,
    name,
    proto,
    from,
    to,
    prefix: prefix === "" ? undefined : prefix,
    own: what !== undefined ? { from, to, what } : undefined,
  };
}

const ANY_ADDRESS = "any address (no remoteIpPrefix)";
/** Everything, as far as exposure goes (IPv4 and IPv6). */
const WORLD_SOURCES = ["0.0.0.0/0", "::/0"];
const sourcesOf = (rules: IngressView[]) =>
  rules.flatMap((r) => (r.prefix === undefined ? WORLD_SOURCES : [r.prefix]));
const overlaps = (a: { from: number; to: number }, b: { from: number; to: number }) =>
  a.from <= b.to && b.from <= a.to;
const describeHits = (hits: PortRange[]) =>
  hits.map((h) => `${h.what} (${describePorts(h.from, h.to)})`).join(", ");

/** The world, as the program judges it (config/net.ts): more public space than a /16's worth. */
export function isWorld(sources: string[]): boolean {
  return exposureOf(sources).world;
}

function describeSource(prefix: string | undefined): string {
  if (prefix === undefined) return ANY_ADDRESS;
  const e = exposureOf([prefix]);
  return /\/0$/.test(prefix.trim())
    ? prefix
    : `${prefix} (${formatCount(e.publicIpv4 > 0n ? e.publicIpv4 : e.publicIpv6)} public addresses)`;
}

const FIX =
  "restrict remoteIpPrefix to the admin, CI network or Jenkins controller CIDRs " +
  `(at most ${formatCount(WORLD_THRESHOLD.ipv4)} public addresses, a /16's worth, per set of rules)`;

export const noWorldIngress: ResourceValidationPolicy = {
  name: "berth-no-world-ingress",
  description:
    "No security group rule opens SSH, the Docker API, the registry, Jenkins or per-build agents, an application slot (its rule's slot-<port> purpose) or a backend service port to the world (more public space than a /16's worth).",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== TYPES.secGroupRule) return;
    const r = ingressView(args.name, args.urn, args.props);
    if (!r || (r.prefix !== undefined && !isWorld([r.prefix]))) return;
    const hits = [...(r.own ? [r.own] : []), ...SENSITIVE_PORTS.filter((s) => overlaps(s, r))];
    if (hits.length === 0) return;
    const opened = r.from === 1 && r.to === 65535 ? "every port" : describePorts(r.from, r.to);
    reportViolation(
      `ingress rule ${JSON.stringify(args.name)} opens ${r.proto || "any protocol"} ${opened} to ${describeSource(r.prefix)}, ` +
        `which includes ${describeHits(hits)}; ${FIX}`,
    );
  },
};

/** Host ports the stack's containers publish on every address of their host, as sensitive ports. */
function publishedPorts(resources: PolicyResource[]): PortRange[] {
  const out: PortRange[] = [];
  for (const c of resources.filter((r) => r.type === TYPES.container)) {
    const ports = knownArray(c.props, "ports");
    if (!Array.isArray(ports)) continue;
    const name = knownString(c.props, "name");
    for (const p of ports) {
      const ext = knownNumber(p, "external");
      const ip = knownString(p, "ip");
      if (typeof ext !== "number" || ip === UNKNOWN) continue;
      if (ip !== undefined && ip !== "" && ip !== "0.0.0.0" && ip !== "::") continue;
      out.push({
        from: ext,
        to: ext,
        what: `container ${JSON.stringify(typeof name === "string" ? name : c.name)}`,
      });
    }
  }
  return out;
}

export const noWorldIngressTotal: StackValidationPolicy = {
  name: "berth-no-world-ingress-total",
  description:
    "The ingress rules that open a sensitive port, taken together, do not open it to the world: a world-open range split into pieces (halves, quarters, many /16s) counts as what it is.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const rules = args.resources
      .filter((r) => r.type === TYPES.secGroupRule)
      .map((r) => ingressView(r.name, r.urn, r.props))
      .filter((r): r is IngressView => r !== undefined);
    const sensitive = [
      ...SENSITIVE_PORTS,
      ...rules.flatMap((r) => (r.own ? [r.own] : [])),
      ...publishedPorts(args.resources),
    ];
    // One report per set of rules: the ports they share and what listens there.
    const groups = new Map<string, { rules: IngressView[]; hits: PortRange[] }>();
    for (const port of sensitive) {
      const opening = rules.filter((r) => overlaps(r, port));
      // A rule open to the world by itself is reported by berth-no-world-ingress.
      if (opening.length < 2 || opening.some((r) => r.prefix === undefined || isWorld([r.prefix]))) continue;
      if (!isWorld(sourcesOf(opening))) continue;
      const key = opening
        .map((r) => r.urn)
        .sort()
        .join(" ");
      const g = groups.get(key) ?? { rules: opening, hits: [] };
      if (!g.hits.some((h) => h.what === port.what && h.from === port.from && h.to === port.to))
        g.hits.push(port);
      groups.set(key, g);
    }
    for (const { rules: opening, hits } of groups.values()) {
      const e = exposureOf(sourcesOf(opening));
      reportViolation(
        `ingress rules ${opening.map((r) => `${JSON.stringify(r.name)} (${r.prefix ?? ANY_ADDRESS})`).join(", ")} ` +
          `together open ${describeHits(hits)} to ${formatCount(e.publicIpv4)} public IPv4` +
          `${e.publicIpv6 > 0n ? ` and ${formatCount(e.publicIpv6)} public IPv6` : ""} addresses: the world in pieces; ${FIX}`,
      );
    }
  },
};

// --- (b) registry only behind TLS + basic auth ---------------------------------------------------

/** Repository of an image reference, without registry host, tag or digest. */
export function imageRepository(ref: string): string {
  const noDigest = ref.split("@")[0] ?? ref;
  const parts = noDigest.split("/");
  const last = parts.pop() ?? "";
  const colon = last.indexOf(":");
  parts.push(colon < 0 ? last : last.slice(0, colon));
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost"))
    parts.shift();
  if (parts[0] === "library") parts.shift();
  return parts.join("/");
}

export function isRegistryImage(ref: string): boolean {
  const repo = imageRepository(ref);
  return repo === "registry" || repo === "distribution/distribution" || repo.endsWith("/registry");
}

export function isNginxImage(ref: string): boolean {
  return /(^|\/)nginx(-unprivileged)?$/.test(imageRepository(ref));
}

/**
 * The image reference a container runs. Berth gives containers the ID of a `RemoteImage` (a name
 * would read back as an ID and force a replacement), so follow the `image` property's dependency to
 * the `RemoteImage` and take its `name`; fall back to matching the ID, then to the value itself.
 */
function imageRefOf(container: PolicyResource, remoteImages: PolicyResource[]): Maybe<string> {
  const deps = known(container.propertyDependencies, "image");
  if (Array.isArray(deps)) {
    for (const dep of deps as PolicyResource[]) {
      if (dep.type !== TYPES.remoteImage) continue;
      const name = knownString(dep.props, "name");
      if (typeof name === "string") return name;
    }
  }
  const image = knownString(container.props, "image");
  if (typeof image !== "string") return image;
  if (IMAGE_ID.test(image)) {
    for (const r of remoteImages) {
      const id = knownString(r.props, "imageId");
      const name = knownString(r.props, "name");
      if (id === image && typeof name === "string") return name;
    }
  }
  return image;
}

const providerKey = (r: PolicyResource): string => r.provider?.urn ?? "<default docker provider>";

interface FrontCheck {
  ok: boolean;
  /** Some input could not be read yet (preview): no verdict. */
  undecided: boolean;
  missing: string[];
}

function checkTlsFront(nginx: PolicyResource): FrontCheck {
  const missing: string[] = [];
  let undecided = false;
  const ports = knownArray(nginx.props, "ports");
  if (ports === UNKNOWN) undecided = true;
  else {
    const publishes443 = (ports ?? []).some((p) => {
      const ext = knownNumber(p, "external");
      if (ext === UNKNOWN) undecided = true;
      return ext === 443;
    });
    if (!publishes443) missing.push("publish port 443");
  }
  const uploads = knownArray(nginx.props, "uploads");
  if (uploads === UNKNOWN) undecided = true;
  else {
    const files: string[] = [];
    for (const u of uploads ?? []) {
      const f = knownString(u, "file");
      if (f === UNKNOWN) undecided = true;
      else if (f !== undefined) files.push(f);
    }
    if (!files.some((f) => /htpasswd/i.test(f))) missing.push("upload an htpasswd file (basic auth)");
    if (!files.some((f) => /(\.key|key\.pem)$/i.test(f))) missing.push("upload a TLS private key");
  }
  return { ok: missing.length === 0, undecided: undecided && missing.length > 0, missing };
}

export const registryBehindTlsAndAuth: StackValidationPolicy = {
  name: "berth-registry-tls-auth",
  description:
    "A Docker registry container only runs behind an nginx on the same Docker host that publishes 443 with a TLS key and an htpasswd file, and publishes no port itself.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const remoteImages = args.resources.filter((r) => r.type === TYPES.remoteImage);
    const containers = args.resources
      .filter((r) => r.type === TYPES.container)
      .map((r) => ({ r, ref: imageRefOf(r, remoteImages) }));
    const registries = containers.filter((c) => typeof c.ref === "string" && isRegistryImage(c.ref));
    for (const { r: registry } of registries) {
      const label = `registry container ${JSON.stringify(registry.name)}`;
      const ports = knownArray(registry.props, "ports");
      if (Array.isArray(ports) && ports.length > 0) {
        const published = ports.map((p) => knownNumber(p, "external") ?? knownNumber(p, "internal"));
        reportViolation(
          `${label} publishes port(s) ${published.map((p) => (typeof p === "number" ? p : "?")).join(", ")} ` +
            `itself, bypassing TLS and authentication; only its nginx front may publish ports`,
          registry.urn,
        );
      }
      const key = providerKey(registry);
      const fronts = containers.filter(
        (c) => providerKey(c.r) === key && typeof c.ref === "string" && isNginxImage(c.ref),
      );
      const undecidedFront = containers.some(
        (c) => providerKey(c.r) === key && c.ref === UNKNOWN && c.r.urn !== registry.urn,
      );
      if (fronts.length === 0) {
        if (!undecidedFront)
          reportViolation(
            `${label} has no nginx container on the same Docker host (provider ${key}) terminating TLS ` +
              `on 443 with basic auth in front of it`,
            registry.urn,
          );
        continue;
      }
      const checks = fronts.map((f) => ({ f: f.r, c: checkTlsFront(f.r) }));
      if (checks.some((x) => x.c.ok || x.c.undecided)) continue;
      const best = checks.reduce((a, b) => (b.c.missing.length < a.c.missing.length ? b : a));
      reportViolation(
        `${label} is fronted by nginx container ${JSON.stringify(best.f.name)}, which does not ` +
          `${best.c.missing.join(", ")}: the registry must never be reachable without TLS and authentication`,
        registry.urn,
      );
    }
  },
};

// --- (c) images pinned by digest ----------------------------------------------------------------

export const imagesPinnedByDigest: ResourceValidationPolicy = {
  name: "berth-images-pinned",
  description:
    "Every container image and every pulled image is pinned by digest (name[:tag]@sha256:<64 hex>), or is a pulled image's ID.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type === TYPES.container) {
      const image = knownString(args.props, "image");
      if (image === UNKNOWN) return;
      if (image === undefined || !(DIGEST_PINNED.test(image) || IMAGE_ID.test(image)))
        reportViolation(
          `container ${JSON.stringify(args.name)} uses image ${JSON.stringify(image ?? "")}, which is not ` +
            `pinned by digest: use name[:tag]@sha256:<64 hex> (or the ID of a digest-pinned RemoteImage)`,
        );
    } else if (args.type === TYPES.remoteImage) {
      const name = knownString(args.props, "name");
      if (name === UNKNOWN) return;
      if (name === undefined || !DIGEST_PINNED.test(name))
        reportViolation(
          `image ${JSON.stringify(name ?? "")} (RemoteImage ${JSON.stringify(args.name)}) is not pinned by ` +
            `digest: use name[:tag]@sha256:<64 hex>`,
        );
    }
  },
};

// --- (d) production data is protected -----------------------------------------------------------

export const productionDataProtected: ResourceValidationPolicy = {
  name: "berth-production-data-protected",
  description:
    "In the production stack every Cinder volume and every Docker volume named *-data has `protect: true`.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (stackOfUrn(args.urn) !== "production") return;
    let what: string;
    if (args.type === TYPES.blockVolume) {
      what = `Cinder volume ${JSON.stringify(args.name)}`;
    } else if (args.type === TYPES.dockerVolume) {
      const volumeName = knownString(args.props, "name");
      const isData =
        args.name.endsWith("-data") || (typeof volumeName === "string" && volumeName.endsWith("-data"));
      if (!isData) return;
      what = `Docker volume ${JSON.stringify(typeof volumeName === "string" ? volumeName : args.name)}`;
    } else return;
    if (args.opts.protect !== true)
      reportViolation(
        `${what} in production is not protected: create it with { protect: true } (hosts.protectData) so ` +
          `no update or destroy can delete production data`,
      );
  },
};

// --- (e) user data fits Nova's limit ------------------------------------------------------------

/** Size of user data as Nova stores it: base64 (given as is when it already is base64). */
export function userDataBase64Size(userData: string): number {
  const trimmed = userData.trim();
  if (trimmed.length > 0 && trimmed.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed))
    return trimmed.length;
  return 4 * Math.ceil(Buffer.byteLength(userData, "utf8") / 3);
}

export const userDataSize: ResourceValidationPolicy = {
  name: "berth-user-data-size",
  description: `A server's user data (Ignition), base64-encoded, is at most ${MAX_USER_DATA_BASE64} bytes (Nova's limit).`,
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== TYPES.instance) return;
    const userData = knownString(args.props, "userData");
    if (typeof userData !== "string") return;
    const size = userDataBase64Size(userData);
    if (size > MAX_USER_DATA_BASE64)
      reportViolation(
        `server ${JSON.stringify(args.name)} has ${size} bytes of user data once base64-encoded; Nova accepts ` +
          `at most ${MAX_USER_DATA_BASE64}: move content out of Ignition or compress it (data URLs with gzip)`,
      );
  },
};

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  noWorldIngress,
  noWorldIngressTotal,
  registryBehindTlsAndAuth,
  imagesPinnedByDigest,
  productionDataProtected,
  userDataSize,
];
