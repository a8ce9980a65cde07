/**
 * `berth drift <stack>`: compares what runs on each host's dockerd with what the program declares
 * for that host (run offline under mocks, plan/declared.ts), and optionally prunes orphans.
 *
 * Findings per host:
 * - orphan: a container, network or volume labelled `org.berth.stack=<stack>` that the program does
 *   not declare for this host; and a per-build container of THIS Jenkins controller (Docker plugin
 *   label `com.nirima.jenkins.plugins.docker.JenkinsId` equal to `--jenkins-id`) whose node
 *   (`…JenkinsNodeName`) is not in the live node list (`--jenkins-nodes`), as the plugin's own
 *   watchdog treats them;
 * - missing: a declared container, network or volume that does not exist;
 * - stopped: a declared container that exists but does not run (except one the program only
 *   creates, `start: false`);
 * - differs: a declared container whose image or key settings differ (see {@link compareContainer}).
 *
 * Exit codes follow `pulumi preview --expect-no-changes` (Pulumi CLI ≥ 3.226.1): 0 no drift, 7 drift,
 * 1 an error (a host could not be read, a prune failed), 2 bad usage.
 */
import { spawnSync } from "node:child_process";
import { BERTH_STACK_LABEL } from "../config/containers.ts";
import {
  declaredHosts,
  HOLDER_LABEL,
  portKey,
  type DeclaredContainer,
  type DeclaredHost,
} from "../plan/declared.ts";
import { runStack } from "../plan/run.ts";
import { judgeSlots } from "./drift-slots.ts";
import { Engine, EngineError, type EngineTls } from "./engine.ts";
import { at, type Json } from "../lib/json.ts";

/** Exit codes (as `pulumi preview --expect-no-changes`: 7 when it finds changes). */
export const EXIT_NO_DRIFT = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_DRIFT = 7;

/** Docker plugin labels (jenkinsci/docker-plugin DockerContainerLabelKeys). */
export const PLUGIN_JENKINS_ID_LABEL = "com.nirima.jenkins.plugins.docker.JenkinsId";
export const PLUGIN_NODE_NAME_LABEL = "com.nirima.jenkins.plugins.docker.JenkinsNodeName";

/** Default grace period: orphans younger than this are reported but never pruned. */
export const DEFAULT_GRACE_MINUTES = 60;

export type ResourceKind = "container" | "network" | "volume" | "per-build container" | "slot container";

export interface Finding {
  /** `foreign`: a container in a declared slot's name that is not Berth's (never removed). */
  kind: "orphan" | "missing" | "stopped" | "differs" | "foreign";
  resource: ResourceKind;
  name: string;
  /** What differs, one line each (`differs`); why it is an orphan (per-build containers). */
  details: string[];
  /** Creation time on the engine (orphans). */
  created?: string;
  /** Set by a prune: removed, or why not. */
  pruned?: "removed" | "too young" | "volumes not pruned (--prune-volumes)" | `failed: ${string}`;
}

export interface HostReport {
  host: string;
  endpoint: string;
  /** The host could not be read (nothing else is known about it). */
  error?: string;
  findings: Finding[];
  /** Things worth knowing that are not drift (another controller's containers, unknown nodes). */
  notes: string[];
}

export interface DriftReport {
  stack: string;
  hosts: HostReport[];
  /** Findings left after pruning (all findings without --prune). */
  drift: number;
  exitCode: number;
}

export interface DriftOptions {
  /** This controller's instance id (the value of the plugin's JenkinsId label). */
  jenkinsId?: string;
  /** Names of the controller's live nodes; without it no per-build container is judged. */
  jenkinsNodes?: ReadonlySet<string>;
  prune?: boolean;
  /** Prune orphan volumes too (their data goes with them). */
  pruneVolumes?: boolean;
  graceSeconds?: number;
  now?: Date;
}

const filter = (labels: string[]) => encodeURIComponent(JSON.stringify({ label: labels }));
const obj = (v: Json | undefined): Record<string, Json> =>
  v && typeof v === "object" && !Array.isArray(v) ? v : {};
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const str = (v: Json | undefined): string => (typeof v === "string" ? v : "");

function diffSets(what: string, declared: readonly string[], actual: readonly string[]): string[] {
  const missing = declared.filter((x) => !actual.includes(x));
  const extra = actual.filter((x) => !declared.includes(x));
  if (missing.length === 0 && extra.length === 0) return [];
  return [
    `${what}: declared [${declared.join(", ")}], running [${actual.join(", ")}]` +
      (missing.length > 0 ? `; missing ${missing.join(", ")}` : "") +
      (extra.length > 0 ? `; not declared ${extra.join(", ")}` : ""),
  ];
}

/**
 * The key settings of a declared container against its inspection: image (the declared reference
 * resolved on the host must be the image the container runs: a pinned digest that is not on the
 * host, or another image ID, differs), restart policy, published ports, networks (and fixed
 * addresses), mounts (named volumes and bind mounts; anonymous volumes ignored), environment
 * (declared variables with their values, secret ones by name; variables neither declared nor from
 * the image are reported) and the declared labels (labels from the image may come on top).
 */
export async function compareContainer(engine: Engine, d: DeclaredContainer, info: Json): Promise<string[]> {
  const out: string[] = [];
  const runningImage = str(at(info, "Image"));
  const declaredImage = await engine.find(`/images/${encodeURIComponent(d.image)}/json`);
  const imageInfo = await engine.find(`/images/${encodeURIComponent(runningImage)}/json`);
  if (str(at(declaredImage, "Id")) !== runningImage) {
    const names = [...arr(at(imageInfo, "RepoDigests")), ...arr(at(imageInfo, "RepoTags"))].map(str);
    out.push(
      `image: declared ${d.image}${declaredImage ? "" : " (not on the host)"}, running ${names[0] ?? runningImage}`,
    );
  }
  const restart = str(at(info, "HostConfig", "RestartPolicy", "Name")) || "no";
  if (restart !== d.restart) out.push(`restart: declared ${d.restart}, running ${restart}`);

  const ports: string[] = [];
  for (const [key, bindings] of Object.entries(obj(at(info, "HostConfig", "PortBindings")))) {
    const [internal, protocol] = key.split("/");
    for (const b of arr(bindings))
      ports.push(portKey(str(at(b, "HostIp")), str(at(b, "HostPort")), internal ?? "", protocol ?? "tcp"));
  }
  out.push(...diffSets("ports", d.ports, ports.sort()));

  const networks = Object.entries(obj(at(info, "NetworkSettings", "Networks"))).map(([name, n]) => {
    const fixed = str(at(n, "IPAMConfig", "IPv4Address"));
    return fixed ? `${name}@${fixed}` : name;
  });
  out.push(...diffSets("networks", d.networks, networks.sort()));

  const mounts = arr(at(info, "Mounts"))
    .filter((m) => !(str(at(m, "Type")) === "volume" && /^[0-9a-f]{64}$/.test(str(at(m, "Name")))))
    .map((m) => {
      const ro = at(m, "RW") === false ? ":ro" : "";
      return str(at(m, "Type")) === "volume"
        ? `volume:${str(at(m, "Name"))}:${str(at(m, "Destination"))}${ro}`
        : `${str(at(m, "Type"))}:${str(at(m, "Source"))}:${str(at(m, "Destination"))}${ro}`;
    });
  out.push(...diffSets("mounts", d.mounts, mounts.sort()));

  const env = arr(at(info, "Config", "Env")).map(str);
  const imageEnv = new Set(arr(at(imageInfo, "Config", "Env")).map(str));
  const name = (e: string) => e.split("=")[0] ?? e;
  const declaredNames = new Set([...d.env.map(name), ...d.secretEnvNames]);
  for (const e of d.env)
    if (!env.includes(e)) {
      const actual = env.find((x) => name(x) === name(e));
      out.push(
        `env ${name(e)}: declared ${JSON.stringify(e.slice(name(e).length + 1))}, running ${actual === undefined ? "unset" : JSON.stringify(actual.slice(name(e).length + 1))}`,
      );
    }
  for (const n of d.secretEnvNames)
    if (!env.some((x) => name(x) === n)) out.push(`env ${n}: declared (secret), running unset`);
  for (const e of env)
    if (!declaredNames.has(name(e)) && !imageEnv.has(e)) out.push(`env ${name(e)}: not declared`);

  const labels = obj(at(info, "Config", "Labels"));
  for (const [k, v] of Object.entries(d.labels))
    if (labels[k] !== v)
      out.push(
        `label ${k}: declared ${JSON.stringify(v)}, running ${labels[k] === undefined ? "unset" : JSON.stringify(labels[k])}`,
      );
  return out;
}

/** Age in seconds of an engine timestamp (ISO string or epoch seconds) at `now`. */
function ageSeconds(created: Json | undefined, now: Date): number {
  const t = typeof created === "number" ? created * 1000 : Date.parse(str(created));
  return Number.isFinite(t) ? Math.floor((now.getTime() - t) / 1000) : 0;
}

/** An engine timestamp to the second, ISO 8601 UTC. */
function isoOf(created: Json | undefined): string {
  const t = typeof created === "number" ? created * 1000 : Date.parse(str(created));
  return Number.isFinite(t)
    ? new Date(Math.floor(t / 1000) * 1000).toISOString().replace(".000Z", "Z")
    : "unknown";
}

/** Compares one host's engine with its declaration; prunes when asked. Throws on engine errors. */
export async function driftHost(
  engine: Engine,
  stack: string,
  declared: DeclaredHost,
  opts: DriftOptions = {},
): Promise<HostReport> {
  const now = opts.now ?? new Date();
  const grace = opts.graceSeconds ?? DEFAULT_GRACE_MINUTES * 60;
  const findings: Finding[] = [];
  const notes: string[] = [];
  /** Orphans with their removal, for the prune. */
  const removals: { finding: Finding; age: number; remove: () => Promise<unknown> }[] = [];

  // Declared containers.
  for (const d of declared.containers) {
    const info = await engine.find(`/containers/${encodeURIComponent(d.name)}/json`);
    if (info === undefined) {
      findings.push({ kind: "missing", resource: "container", name: d.name, details: [] });
      continue;
    }
    const details = await compareContainer(engine, d, info);
    // A container the program only creates (never started) is expected not to run.
    if (d.started && at(info, "State", "Running") !== true)
      findings.push({
        kind: "stopped",
        resource: "container",
        name: d.name,
        details: [`state: ${str(at(info, "State", "Status"))}`, ...details],
      });
    else if (details.length > 0)
      findings.push({ kind: "differs", resource: "container", name: d.name, details });
  }
  /** Records an orphan finding and how to remove it (its age counted from `created`). */
  const orphan = (
    resource: Finding["resource"],
    name: string,
    created: Json | undefined,
    remove: () => Promise<unknown>,
    details: string[] = [],
  ): void => {
    const finding: Finding = { kind: "orphan", resource, name, details, created: isoOf(created) };
    findings.push(finding);
    removals.push({ finding, age: ageSeconds(created, now), remove });
  };
  const declaredContainers = new Set(declared.containers.map((c) => c.name));
  // Application slots (cli/drift-slots.ts): the builds' application containers are not orphans.
  const slots = await judgeSlots(engine, stack, declared);
  for (const s of slots.undeclared)
    orphan(
      "slot container",
      s.name,
      s.created,
      () => engine.call("DELETE", `/containers/${s.id}?force=1&v=1`),
      [`slot ${s.slot} is not declared on this host`],
    );
  for (const f of slots.stopped) findings.push({ kind: "stopped", resource: "slot container", ...f });
  for (const f of slots.foreign) findings.push({ kind: "foreign", resource: "slot container", ...f });
  notes.push(...slots.notes);
  const slotHandled = new Set([...slots.applications, ...slots.undeclared.map((s) => s.name)]);
  const mine = `${BERTH_STACK_LABEL}=${stack}`;
  for (const c of arr(await engine.call("GET", `/containers/json?all=1&filters=${filter([mine])}`))) {
    const name = str(arr(at(c, "Names"))[0]).replace(/^\//, "");
    if (declaredContainers.has(name) || slotHandled.has(name)) continue;
    const id = str(at(c, "Id"));
    orphan("container", name, at(c, "Created"), () => engine.call("DELETE", `/containers/${id}?force=1&v=1`));
  }

  // Per-build containers (Docker plugin).
  const builds = arr(
    await engine.call("GET", `/containers/json?all=1&filters=${filter([PLUGIN_JENKINS_ID_LABEL])}`),
  );
  const others = builds.filter((c) => str(at(c, "Labels", PLUGIN_JENKINS_ID_LABEL)) !== opts.jenkinsId);
  if (opts.jenkinsId === undefined) {
    if (builds.length > 0)
      notes.push(
        `${String(builds.length)} per-build container(s) not judged: no --jenkins-id (this controller's instance id)`,
      );
  } else {
    if (others.length > 0)
      notes.push(`${String(others.length)} per-build container(s) of other controllers left alone`);
    const ours = builds.filter((c) => str(at(c, "Labels", PLUGIN_JENKINS_ID_LABEL)) === opts.jenkinsId);
    const unknown: string[] = [];
    for (const c of ours) {
      const name = str(arr(at(c, "Names"))[0]).replace(/^\//, "");
      const node = str(at(c, "Labels", PLUGIN_NODE_NAME_LABEL));
      if (!opts.jenkinsNodes || node === "") {
        unknown.push(name);
        continue;
      }
      if (opts.jenkinsNodes.has(node)) continue;
      const id = str(at(c, "Id"));
      orphan(
        "per-build container",
        name,
        at(c, "Created"),
        () => engine.call("DELETE", `/containers/${id}?force=1&v=1`),
        [`node ${node} is gone`],
      );
    }
    if (unknown.length > 0)
      notes.push(
        `${String(unknown.length)} per-build container(s) of this controller not judged: ${opts.jenkinsNodes ? "no node label" : "no --jenkins-nodes"} (${unknown.join(", ")})`,
      );
  }

  // Networks.
  const networks = arr(await engine.call("GET", `/networks?filters=${filter([mine])}`));
  const allNetworks = arr(await engine.call("GET", "/networks"));
  for (const d of declared.networks)
    if (!allNetworks.some((n) => str(at(n, "Name")) === d.name))
      findings.push({ kind: "missing", resource: "network", name: d.name, details: [] });
  const declaredNetworks = new Set(declared.networks.map((n) => n.name));
  for (const n of networks) {
    const name = str(at(n, "Name"));
    if (declaredNetworks.has(name)) continue;
    const id = str(at(n, "Id"));
    orphan("network", name, at(n, "Created"), () => engine.call("DELETE", `/networks/${id}`));
  }

  // Volumes.
  const volumes = arr(at(await engine.call("GET", `/volumes?filters=${filter([mine])}`), "Volumes"));
  const declaredVolumes = new Set(declared.volumes.map((v) => v.name));
  for (const d of declared.volumes)
    if ((await engine.find(`/volumes/${encodeURIComponent(d.name)}`)) === undefined)
      findings.push({ kind: "missing", resource: "volume", name: d.name, details: [] });
  for (const v of volumes) {
    const name = str(at(v, "Name"));
    if (declaredVolumes.has(name)) continue;
    orphan("volume", name, at(v, "CreatedAt"), () =>
      engine.call("DELETE", `/volumes/${encodeURIComponent(name)}`),
    );
  }

  // Declared resources first (in the program's order), then orphans by kind and name.
  const order: ResourceKind[] = ["container", "per-build container", "slot container", "network", "volume"];
  const rank = (f: Finding) => (f.kind === "orphan" ? 1 + order.indexOf(f.resource) : 0);
  findings.sort((a, b) => rank(a) - rank(b) || (rank(a) > 0 ? a.name.localeCompare(b.name) : 0));
  if (opts.prune) {
    // Containers first: a network or volume an orphan container uses can only go after it.
    removals.sort((a, b) => order.indexOf(a.finding.resource) - order.indexOf(b.finding.resource));
    for (const r of removals) {
      if (r.age < grace) r.finding.pruned = "too young";
      else if (r.finding.resource === "volume" && !opts.pruneVolumes)
        r.finding.pruned = "volumes not pruned (--prune-volumes)";
      else {
        try {
          await r.remove();
          r.finding.pruned = "removed";
        } catch (e) {
          r.finding.pruned = `failed: ${e instanceof Error ? e.message : String(e)}`;
        }
      }
    }
  }
  // Containers a build's holder: managed by `berth-holder gc`, not by drift.
  const holders = arr(
    await engine.call("GET", `/containers/json?all=1&filters=${filter([`${HOLDER_LABEL}=build`])}`),
  );
  if (holders.length > 0 && !opts.prune)
    notes.push(`${String(holders.length)} per-build network holder(s) (removed by berth-holder gc)`);
  return { host: declared.host, endpoint: engine.url, findings, notes };
}

/** Exit code and remaining drift of a set of host reports. */
export function summarize(stack: string, hosts: HostReport[]): DriftReport {
  const drift = hosts.reduce((n, h) => n + h.findings.filter((f) => f.pruned !== "removed").length, 0);
  const failed = hosts.some(
    (h) => h.error !== undefined || h.findings.some((f) => f.pruned?.startsWith("failed")),
  );
  return { stack, hosts, drift, exitCode: failed ? EXIT_ERROR : drift > 0 ? EXIT_DRIFT : EXIT_NO_DRIFT };
}

/** The human-readable report. */
export function renderDrift(r: DriftReport): string {
  const lines = [`berth drift ${r.stack}`];
  for (const h of r.hosts) {
    lines.push(`${h.host} (${h.endpoint}):`);
    if (h.error !== undefined) lines.push(`  error: ${h.error}`);
    else if (h.findings.length === 0) lines.push("  no drift");
    for (const f of h.findings) {
      const extra = [
        ...(f.created ? [`created ${f.created}`] : []),
        ...(f.pruned ? [f.pruned === "removed" ? "removed" : `not removed: ${f.pruned}`] : []),
      ];
      lines.push(`  ${f.kind} ${f.resource} ${f.name}${extra.length > 0 ? ` (${extra.join(", ")})` : ""}`);
      for (const d of f.details) lines.push(`    ${d}`);
    }
    for (const n of h.notes) lines.push(`  note: ${n}`);
  }
  const verdict =
    r.exitCode === EXIT_ERROR ? "error" : r.drift > 0 ? `drift: ${String(r.drift)} finding(s)` : "no drift";
  lines.push(`${verdict} (exit ${String(r.exitCode)})`);
  return lines.join("\n");
}

// --- the command ---------------------------------------------------------------------------------

export interface DriftCommandOptions extends DriftOptions {
  /** Host name → endpoint URL (`--docker-host NAME=URL`); other hosts come from the stack outputs. */
  dockerHosts?: Readonly<Record<string, string>>;
  /** Reach hosts over dockerd's mutual TLS instead of ssh (endpoints and certificate from stack outputs). */
  tls?: boolean;
  /** Reads the stack outputs (default: `pulumi stack output --json --show-secrets`). */
  stackOutputs?: (stack: string) => Record<string, unknown>;
}

export class DriftUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DriftUsageError";
  }
}

/** `pulumi stack output --json --show-secrets --stack <stack>` (the secrets: the client key). */
export function pulumiStackOutputs(stack: string): Record<string, unknown> {
  const r = spawnSync("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", stack], {
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.status !== 0)
    throw new EngineError(
      `pulumi stack output --stack ${stack} failed (${r.error ? r.error.message : `exit ${String(r.status)}`}): ${(r.stderr ?? "").trim()}; ` +
        "give every host with --docker-host NAME=URL to run without the Pulumi CLI",
    );
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Runs the comparison for every host of `stack`. */
export async function driftStack(
  root: string,
  stack: string,
  opts: DriftCommandOptions = {},
): Promise<DriftReport> {
  const run = await runStack(root, stack);
  const declared = declaredHosts(run);
  const unknown = Object.keys(opts.dockerHosts ?? {}).filter((h) => !declared.has(h));
  if (unknown.length > 0)
    throw new DriftUsageError(
      `--docker-host names ${unknown.join(", ")}, not a host of ${stack} (its hosts: ${[...declared.keys()].join(", ")})`,
    );
  let outputs: Record<string, unknown> | undefined;
  const readOutputs = () => (outputs ??= (opts.stackOutputs ?? pulumiStackOutputs)(stack));
  const reports: HostReport[] = [];
  for (const [host, d] of declared) {
    let url = opts.dockerHosts?.[host];
    let engine: Engine | undefined;
    try {
      if (url === undefined) {
        const hosts = (readOutputs().hosts ?? []) as { name?: string; floatingIp?: string }[];
        const ip = hosts.find((h) => h.name === host)?.floatingIp;
        if (!ip) throw new EngineError(`the stack outputs have no floating IP for ${host} (output hosts)`);
        url = opts.tls ? `tcp://${ip}:${String(run.config.hosts.dockerTlsPort)}` : `ssh://core@${ip}`;
      }
      let tls: EngineTls | undefined;
      if (url.startsWith("tcp://")) {
        const o = readOutputs();
        const [caPem, certPem, keyPem] = [
          o.dockerTlsCaPem,
          o.dockerTlsClientCertPem,
          o.dockerTlsClientKeyPem,
        ];
        if (typeof caPem !== "string" || typeof certPem !== "string" || typeof keyPem !== "string")
          throw new EngineError(
            `${url}: the stack outputs have no dockerTls* client certificate (berth:hosts.dockerTls is off?)`,
          );
        tls = { caPem, certPem, keyPem };
      }
      engine = new Engine(url, tls);
      reports.push(await driftHost(engine, stack, d, opts));
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
      reports.push({ host, endpoint: url ?? "?", error: e.message, findings: [], notes: [] });
    } finally {
      engine?.close();
    }
  }
  return summarize(stack, reports);
}
