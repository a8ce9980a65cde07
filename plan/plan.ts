/**
 * `berth plan`: the real program run under mocks, written for reviewers. Deterministic: the same
 * commit gives the same bytes (mock IDs derive from names; everything is sorted).
 */
import { describeSource } from "../config/validate-restore.ts";
import { PIDS_LIMIT_LABEL } from "../config/limits.ts";
import { createHash, createHmac } from "node:crypto";
import { containersByHost, imageReferences, providerUrn } from "./containers.ts";
import type { CapturedResource } from "./mocks.ts";
import { PRIVATE_KEY_PEM } from "../renderers/pem.ts";
import { isSecret, plain, type StackRun } from "./run.ts";
import { planSlots, renderPlanSlots, type PlanSlot } from "./slots.ts";

export const MASK = "[secret]";

export interface PlanResource {
  urn: string;
  type: string;
  name: string;
  parent: string | null;
  /** The provider resource's URN, for resources using an explicit provider. */
  provider: string | null;
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  inputs: unknown;
  /** Names of inputs that are (or contain) secrets; their values are masked. */
  secretInputs: string[];
  /**
   * For `berth plan --against` only: per secret input, an HMAC of its value under a random key
   * that exists for one comparison and is never written anywhere, so a change of a secret can be
   * reported without revealing it (or anything a guess could be checked against).
   */
  secretDigests?: Record<string, string>;
  /** URNs the resource was known by before (its aliases); only present when it has any. */
  aliases?: string[];
}

export interface PlanHost {
  name: string;
  privateIp: string;
  flavor: string;
  /** Hash of the host's user data (the exact Ignition), to spot replacements without the secret text. */
  userDataDigest: string;
  containers: {
    name: string;
    image: string;
    ports: string[];
    networks: string[];
    /**
     * Memory limit in MiB and CPU limit (the container's `memory`/`cpus` inputs), when set, and its
     * process-count limit (its `org.berth.pids-limit` label, applied on the host by berth-pids-limit).
     */
    limits?: { memoryMiB: number; cpus: number; pids?: number };
  }[];
  /** Sums of the containers' limits and what the over-commit rule allows (berth:limits). */
  limits: {
    memoryMiB: number;
    memoryBudgetMiB: number;
    cpus: number;
    cpuBudget: number;
    /** Per-build containers counted in the sums (the Jenkins Docker cloud's containerCap on this host). */
    perBuild: number;
    /** Process-count limit of each per-build container, and of containers a job starts itself. */
    perBuildPids: number;
    defaultPids: number;
  };
}

export interface Plan {
  stack: string;
  environment: string;
  resources: PlanResource[];
  hosts: PlanHost[];
  /** How jobs reach Docker per agent kind (`berth:jenkins.dockerAccess`), when any kind does. */
  dockerAccess?: { static: string; perBuild: string };
  /** Fresh production data per production-like service (sources shown without secrets). */
  restores?: PlanRestore[];
  /** Application slots (`berth:services.slots`), when the stack has any. */
  slots?: PlanSlot[];
}

/** One restore job, as `berth plan` shows it: on every host, credentials masked. */
export interface PlanRestore {
  service: string;
  kind: string;
  source: string;
  format: string;
  checksum: string;
  schedule: string;
  masking: string;
}

/**
 * A plain string carrying private key text: masked in plan.json even though the program did not
 * mark it secret (a safety net: a key must never reach a reviewer's plan).
 */
const carriesPrivateKey = (v: unknown): boolean => typeof v === "string" && PRIVATE_KEY_PEM.test(v);

/**
 * A copy of a captured value with object keys sorted, where `leaf` may replace any value (it
 * returns `{ with }` for those, undefined to go on into arrays and objects).
 */
function mapSorted(v: unknown, leaf: (v: unknown) => { with: unknown } | undefined): unknown {
  const replaced = leaf(v);
  if (replaced) return replaced.with;
  if (Array.isArray(v)) return v.map((x) => mapSorted(x, leaf));
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, x]) => [k, mapSorted(x, leaf)]),
    );
  return v;
}

const mask = (v: unknown): unknown =>
  mapSorted(v, (x) => (isSecret(x) || carriesPrivateKey(x) ? { with: MASK } : undefined));

/** Whether `v` is, or contains, a secret (or private key text, see {@link carriesPrivateKey}). */
function containsSecret(v: unknown): boolean {
  if (isSecret(v) || carriesPrivateKey(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecret);
  if (v && typeof v === "object") return Object.values(v as Record<string, unknown>).some(containsSecret);
  return false;
}

function secretDigests(r: CapturedResource, key: string): Record<string, string> {
  return Object.fromEntries(
    Object.keys(r.inputs)
      .filter((k) => containsSecret(r.inputs[k]))
      .sort()
      .map((k) => [
        k,
        createHmac("sha256", key)
          .update(JSON.stringify(reveal(r.inputs[k])) ?? "")
          .digest("hex"),
      ]),
  );
}

/** The plan as written to plan.json: without the one-comparison digests. */
export function withoutDigests(plan: Plan): Plan {
  return { ...plan, resources: plan.resources.map(({ secretDigests: _digests, ...r }) => r) };
}

const digest = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** A captured value with every secret mark removed (for digests; never written out). */
function reveal(v: unknown): unknown {
  return mapSorted(v, (x) => (isSecret(x) ? { with: reveal(plain(x)) } : undefined));
}

export interface BuildPlanOptions {
  /** Key for {@link PlanResource.secretDigests}; without it the plan has no digests. */
  secretDigestKey?: string;
}

export function buildPlan(run: StackRun, options: BuildPlanOptions = {}): Plan {
  const { secretDigestKey } = options;
  const resources = [...run.resources]
    .sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0))
    .map<PlanResource>((r) => ({
      urn: r.urn,
      type: r.type,
      name: r.name,
      parent: r.parent ?? null,
      provider: providerUrn(r),
      protect: r.protect,
      retainOnDelete: r.retainOnDelete,
      deleteBeforeReplace: r.deleteBeforeReplace,
      inputs: mask(r.inputs),
      secretInputs: Object.keys(r.inputs)
        .filter((k) => containsSecret(r.inputs[k]))
        .sort(),
      ...(secretDigestKey === undefined ? {} : { secretDigests: secretDigests(r, secretDigestKey) }),
      ...(r.aliases.length > 0 ? { aliases: [...r.aliases].sort() } : {}),
    }));
  const containers = containersByHost(run);
  const imageOf = imageReferences(run);
  const hosts = run.config.hosts.names.map<PlanHost>((name, i) => {
    const server = run.resources.find(
      (r) => r.type === "openstack:compute/instance:Instance" && plain(r.inputs.name) === name,
    );
    const hostContainers = (containers.get(name) ?? [])
      .map((c) => ({
        name: String(plain(c.inputs.name) ?? c.name),
        image: imageOf(c),
        ports: ((plain(c.inputs.ports) as Record<string, unknown>[] | undefined) ?? []).map(
          (p) =>
            `${String(p.ip ?? "0.0.0.0")}:${String(p.external)}->${String(p.internal)}/${String(p.protocol ?? "tcp")}`,
        ),
        networks: containerNetworks(c.inputs),
        ...containerLimits(c.inputs),
      }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    const l = run.config.limits;
    const totals = l.hosts.find((h) => h.name === name);
    return {
      name,
      privateIp: run.config.hosts.addresses[i] as string,
      flavor: run.config.hosts.flavor,
      userDataDigest: server ? digest(String(plain(server.inputs.userData))) : "",
      containers: hostContainers,
      limits: {
        memoryMiB: totals?.memoryMiB ?? 0,
        memoryBudgetMiB: l.memoryBudgetMiB,
        cpus: totals?.cpus ?? 0,
        cpuBudget: l.cpuBudget,
        perBuild: totals?.parts.find((p) => p.kind === "perBuild")?.count ?? 0,
        perBuildPids: l.containers.perBuild.pids,
        defaultPids: l.defaultPids,
      },
    };
  });
  const access = run.config.jenkins.dockerAccess;
  const restores = run.config.services.productionLike.flatMap<PlanRestore>((svc) => {
    const r = svc.restore;
    if (!r) return [];
    return [
      {
        service: svc.name,
        kind: svc.kind,
        source: describeSource(r.source),
        format: r.format,
        checksum: !r.checksum
          ? "none"
          : "sha256" in r.checksum
            ? `sha256 ${r.checksum.sha256}`
            : r.checksum.url,
        schedule: r.schedule,
        masking: r.masking?.path ?? "none",
      },
    ];
  });
  return {
    stack: run.config.stack,
    environment: run.config.environment,
    resources,
    hosts,
    ...(access.static !== "none" || access.perBuild !== "none" ? { dockerAccess: { ...access } } : {}),
    ...(restores.length > 0 ? { restores } : {}),
    ...((run.config.services.slots ?? []).length > 0 ? { slots: planSlots(run.config) } : {}),
  };
}

/** A container's limits from its `memory` (MiB) and `cpus` inputs, when both are set, and its pids label. */
function containerLimits(inputs: Record<string, unknown>): {
  limits?: { memoryMiB: number; cpus: number; pids?: number };
} {
  const memory = plain(inputs.memory);
  const cpus = plain(inputs.cpus);
  const labels = (plain(inputs.labels) as { label?: unknown; value?: unknown }[] | undefined) ?? [];
  const pids = labels.find((l) => l.label === PIDS_LIMIT_LABEL)?.value;
  return typeof memory === "number" && typeof cpus === "string"
    ? {
        limits: {
          memoryMiB: memory,
          cpus: Number(cpus),
          ...(typeof pids === "string" ? { pids: Number(pids) } : {}),
        },
      }
    : {};
}

/** The networks a container joins: its `networksAdvanced`, else its network mode (the default bridge). */
function containerNetworks(inputs: Record<string, unknown>): string[] {
  const advanced = ((plain(inputs.networksAdvanced) as Record<string, unknown>[] | undefined) ?? []).map(
    (n) => String(n.name),
  );
  const mode = plain(inputs.networkMode);
  return advanced.length > 0 ? advanced : typeof mode === "string" ? [mode] : ["bridge"];
}

const cell = (s: unknown) => String(s).replace(/\|/g, "\\|");
const table = (head: string[], rows: unknown[][]) =>
  [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");

/** The reviewer's view of a plan: Markdown tables and a mermaid diagram. */
export function renderPlanMarkdown(plan: Plan): string {
  const of = (t: string) => plan.resources.filter((r) => r.type === t);
  const inp = (r: PlanResource) => r.inputs as Record<string, unknown>;
  const rules = of("openstack:networking/secGroupRule:SecGroupRule").map((r) => {
    const i = inp(r);
    const ports =
      i.portRangeMin === undefined
        ? "all"
        : i.portRangeMin === i.portRangeMax
          ? i.portRangeMin
          : `${String(i.portRangeMin)}-${String(i.portRangeMax)}`;
    return [i.direction, i.protocol, ports, i.remoteIpPrefix, i.description ?? ""];
  });
  const volumes = [
    ...of("openstack:blockstorage/volume:Volume").map((v) => [
      "cinder",
      inp(v).name,
      `${String(inp(v).size)} GiB`,
      v.protect ? "protected, retained" : "",
    ]),
    ...of("docker:index/volume:Volume").map((v) => [
      "docker",
      `${hostOfProvider(plan, v)}: ${String(inp(v).name)}`,
      "",
      v.protect ? "protected, retained" : "",
    ]),
  ];
  const networks = [
    ...of("openstack:networking/subnet:Subnet").map((s) => ["openstack", inp(s).name, inp(s).cidr]),
    ...of("docker:index/network:Network").map((n) => [
      "docker",
      `${hostOfProvider(plan, n)}: ${String(inp(n).name)}`,
      ((inp(n).ipamConfigs as { subnet?: string }[] | undefined) ?? []).map((c) => c.subnet ?? "").join(", "),
    ]),
  ];
  const lines = [
    `# Berth plan: stack \`${plan.stack}\` (${plan.environment})`,
    "",
    `${plan.resources.length} resources. Generated offline by \`berth plan ${plan.stack}\` (the real program under Pulumi's mocks; IDs and addresses the cloud assigns are placeholders).`,
    "",
    "## Hosts",
    "",
    table(
      ["host", "private IP", "flavor", "containers", "memory limits", "CPU limits", "Ignition digest"],
      plan.hosts.map((h) => [
        h.name,
        h.privateIp,
        h.flavor,
        h.containers.length,
        `${h.limits.memoryMiB} of ${h.limits.memoryBudgetMiB} MiB${h.limits.perBuild > 0 ? ` (${h.limits.perBuild} per-build)` : ""}`,
        `${h.limits.cpus} of ${h.limits.cpuBudget}`,
        `\`${h.userDataDigest}\``,
      ]),
    ),
    "",
    "Limits: the sums of the memory and CPU limits of the host's containers, per-build containers included (as many as the Docker cloud's containerCap), and what `berth:limits.overcommit` allows on the host's flavor (docs/configuration.md).",
    "",
    `Process counts: each container's limit is its \`${PIDS_LIMIT_LABEL}\` label, which the host's \`berth-pids-limit\` service applies with \`docker update --pids-limit\` as the container is created and started (neither the Docker provider nor the Jenkins Docker plugin can set one);${plan.hosts.some((h) => h.limits.perBuild > 0) ? ` per-build containers get ${plan.hosts[0]?.limits.perBuildPids ?? "—"},` : ""} containers a job starts itself ${plan.hosts[0]?.limits.defaultPids ?? "—"} (\`berth:limits.defaultPids\`). Until the service has seen a new container (a fraction of a second) only its memory limit bounds it.`,
    "",
    "## Containers per host",
    "",
    ...plan.hosts.flatMap((h) => [
      `### ${h.name}`,
      "",
      h.containers.length === 0
        ? "_none_"
        : table(
            ["container", "image", "published ports", "networks", "memory", "CPUs", "processes"],
            h.containers.map((c) => [
              c.name,
              `\`${c.image}\``,
              c.ports.join(", ") || "—",
              c.networks.join(", ") || "—",
              c.limits ? `${c.limits.memoryMiB} MiB` : "unlimited",
              c.limits ? c.limits.cpus : "unlimited",
              c.limits?.pids ?? "default",
            ]),
          ),
      "",
    ]),
    ...(plan.dockerAccess
      ? [
          "## Docker access from jobs",
          "",
          `Static agents: \`${plan.dockerAccess.static}\`; per-build agents: \`${plan.dockerAccess.perBuild}\`. **Docker access is root on that host**: any job that can run \`docker\` there can take the machine. With \`tls\`, a job's credentials are its host's build certificate, which every other host's dockerd refuses.`,
          "",
        ]
      : []),
    ...(plan.restores
      ? [
          "## Fresh production data",
          "",
          "On every host, a timer (host time zone) restores each service from its latest dump, verified and masked before the service is used again (docs/configuration.md, `restore`). Credentials and temporary URLs are secrets and not shown.",
          "",
          table(
            ["service", "kind", "source", "format", "checksum", "schedule", "masking"],
            plan.restores.map((r) => [
              r.service,
              r.kind,
              r.source,
              r.format,
              r.checksum,
              `\`${r.schedule}\``,
              r.masking,
            ]),
          ),
          "",
        ]
      : []),
    ...renderPlanSlots(plan.slots),
    "## Networks",
    "",
    table(["kind", "name", "subnet"], networks),
    "",
    "## Volumes",
    "",
    table(["kind", "name", "size", "safety"], volumes),
    "",
    "## Security rules (ingress)",
    "",
    table(["direction", "protocol", "ports", "source", "purpose"], rules),
    "",
    "## Exposed ports",
    "",
    table(
      ["host", "container", "binding"],
      plan.hosts.flatMap((h) => h.containers.flatMap((c) => c.ports.map((p) => [h.name, c.name, p]))),
    ),
    "",
    "## Diagram",
    "",
    "```mermaid",
    renderMermaid(plan),
    "```",
    "",
  ];
  return lines.join("\n");
}

function hostOfProvider(plan: Plan, r: PlanResource): string {
  const host = plan.hosts.find(
    (h) => r.provider?.endsWith(`::${h.name}-docker`) || r.provider?.includes(`::${h.name}`),
  );
  return host?.name ?? "?";
}

function renderMermaid(plan: Plan): string {
  const id = (s: string) => s.replace(/[^A-Za-z0-9]/g, "_");
  const out = [
    "flowchart LR",
    `  ext((external network)) --- router[router]`,
    `  router --- net[CI network]`,
  ];
  for (const h of plan.hosts) {
    out.push(`  net --- ${id(h.name)}["${h.name}<br/>${h.privateIp}"]`);
    for (const c of h.containers) out.push(`  ${id(h.name)} --> ${id(`${h.name}-${c.name}`)}["${c.name}"]`);
  }
  return out.join("\n");
}

/** `plan.json`: stable, pretty JSON. */
export function renderPlanJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + "\n";
}
