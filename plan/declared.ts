/**
 * What the program declares on each host's Docker engine, read from a run under mocks: the
 * containers (with the settings `berth drift` compares), networks and volumes. Values that only
 * exist in a real stack (generated passwords) are secret inputs here and are compared by name only.
 */
import { isSecret, plain, type StackRun } from "./run.ts";
import { imageReferences, providerUrn } from "./containers.ts";
import type { CapturedResource } from "./mocks.ts";

/** Label of network holders (`build`: a build's own, removed by `berth-holder gc`). */
export { HOLDER_LABEL } from "../components/services.ts";

export interface DeclaredContainer {
  name: string;
  /** The pinned reference (`repo:tag@sha256:…`). */
  image: string;
  /** Labels the program sets (the image's own labels come on top on the engine). */
  labels: Record<string, string>;
  /** `NAME=value` of the environment variables with plain values. */
  env: string[];
  /** Names of the variables whose values are secret (compared by name only). */
  secretEnvNames: string[];
  /** `ip:external->internal/protocol`, sorted. */
  ports: string[];
  /** Network names, with `@<ipv4>` for a fixed address, sorted. */
  networks: string[];
  /** `volume:<name>:<path>` or `bind:<host path>:<path>`, `:ro` when read-only, sorted. */
  mounts: string[];
  /** Restart policy name (`unless-stopped`), or `no`. */
  restart: string;
  /** False for a container the program only creates (`start: false`, e.g. the build-TLS carrier). */
  started: boolean;
}

export interface DeclaredNetwork {
  name: string;
  labels: Record<string, string>;
}

export interface DeclaredVolume {
  name: string;
  labels: Record<string, string>;
}

export interface DeclaredHost {
  host: string;
  containers: DeclaredContainer[];
  networks: DeclaredNetwork[];
  volumes: DeclaredVolume[];
}

const TYPES = {
  provider: "pulumi:providers:docker",
  container: "docker:index/container:Container",
  network: "docker:index/network:Network",
  volume: "docker:index/volume:Volume",
} as const;

type Obj = Record<string, unknown>;

function list(v: unknown): Obj[] {
  const p = plain(v);
  return Array.isArray(p) ? (p.map((x) => plain(x)) as Obj[]) : [];
}

function labelsOf(r: CapturedResource): Record<string, string> {
  return Object.fromEntries(
    list(r.inputs.labels).map((l) => [String(plain(l.label)), String(plain(l.value))]),
  );
}

/** `ip:external->internal/protocol` as both the program and the engine's port bindings give it. */
export function portKey(
  ip: string,
  external: number | string,
  internal: number | string,
  protocol: string,
): string {
  return `${ip === "" ? "0.0.0.0" : ip}:${String(external)}->${String(internal)}/${protocol}`;
}

function declaredContainer(c: CapturedResource, imageOf: (c: CapturedResource) => string): DeclaredContainer {
  const envs = c.inputs.envs;
  const secretEnv = isSecret(envs);
  const envList = (plain(envs) as unknown[] | undefined) ?? [];
  const env: string[] = [];
  const secretEnvNames: string[] = [];
  for (const e of envList) {
    const s = String(plain(e));
    if (secretEnv || isSecret(e)) secretEnvNames.push(s.split("=")[0] ?? s);
    else env.push(s);
  }
  const advanced = list(c.inputs.networksAdvanced);
  const networks =
    advanced.length > 0
      ? advanced.map((n) => {
          const ip = plain(n.ipv4Address);
          return typeof ip === "string" && ip !== ""
            ? `${String(plain(n.name))}@${ip}`
            : String(plain(n.name));
        })
      : [String(plain(c.inputs.networkMode) ?? "bridge")];
  const mounts = list(c.inputs.volumes).map((v) => {
    const ro = plain(v.readOnly) === true ? ":ro" : "";
    const volume = plain(v.volumeName);
    return typeof volume === "string"
      ? `volume:${volume}:${String(plain(v.containerPath))}${ro}`
      : `bind:${String(plain(v.hostPath))}:${String(plain(v.containerPath))}${ro}`;
  });
  const ports = list(c.inputs.ports).map((p) => {
    const internal = Number(plain(p.internal));
    return portKey(
      String(plain(p.ip) ?? "0.0.0.0"),
      Number(plain(p.external) ?? internal),
      internal,
      String(plain(p.protocol) ?? "tcp"),
    );
  });
  return {
    name: String(plain(c.inputs.name)),
    image: imageOf(c),
    labels: labelsOf(c),
    env: env.sort(),
    secretEnvNames: secretEnvNames.sort(),
    ports: ports.sort(),
    networks: networks.sort(),
    mounts: mounts.sort(),
    restart: String(plain(c.inputs.restart) ?? "no"),
    started: plain(c.inputs.start) !== false,
  };
}

/** Host name → what the program declares on that host's engine (every host of the stack). */
export function declaredHosts(run: StackRun): Map<string, DeclaredHost> {
  const providerHost = new Map<string, string>();
  for (const p of run.resources.filter((r) => r.type === TYPES.provider)) {
    const host = run.config.hosts.names.find((h) => p.name.startsWith(`${h}-`) || p.name === h);
    if (host) providerHost.set(p.urn, host);
  }
  const hosts = new Map<string, DeclaredHost>(
    run.config.hosts.names.map((h) => [h, { host: h, containers: [], networks: [], volumes: [] }]),
  );
  const imageOf = imageReferences(run);
  for (const r of run.resources) {
    const host = hosts.get(providerHost.get(providerUrn(r) ?? "") ?? "");
    if (!host) continue;
    if (r.type === TYPES.container) host.containers.push(declaredContainer(r, imageOf));
    else if (r.type === TYPES.network)
      host.networks.push({ name: String(plain(r.inputs.name)), labels: labelsOf(r) });
    else if (r.type === TYPES.volume)
      host.volumes.push({ name: String(plain(r.inputs.name)), labels: labelsOf(r) });
  }
  return hosts;
}
