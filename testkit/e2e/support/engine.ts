/**
 * The end-to-end suite's Docker engine: a private dockerd (`scripts/e2e-env.sh`) with the storage
 * driver of `$BERTH_E2E_STORAGE` (btrfs on a btrfs loop file, by default, or overlay2 on ext4), the
 * stand-in images (`images/standins/build.sh`), and a small client for the Engine API on its Unix
 * socket, so containers are created with the same fields the Pulumi Docker provider sends
 * (healthcheck arrays, entrypoints, static addresses, port bindings) and files are uploaded the way
 * the provider's `uploads` are (an archive put into the created container).
 *
 * Reach containers only through ports published on 127.0.0.1 or from inside containers on networks
 * the test created itself.
 *
 * Shared by the end-to-end suite and bench/engine.ts (testkit/ sits outside test/, which bench/ may
 * not import); the suite's own skip-or-fail check of the tools it needs, `requireE2eTools`, stays
 * in test/e2e/support/engine.ts.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  DOCKER_VOLUME_FILESYSTEM,
  STORAGE_DRIVERS,
  isStorageDriver,
  type StorageDriver,
} from "../../../renderers/storage.ts";
import { readReply, replyBody } from "../../../lib/engine-reply.ts";
import { at, type Json } from "../../../lib/json.ts";
import { tarArchive, type TarFile } from "../../../lib/tar.ts";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
export const E2E_ENV = resolve(REPO_ROOT, "scripts/e2e-env.sh");
export const STANDINS_BUILD = resolve(REPO_ROOT, "images/standins/build.sh");
/** Kept between runs: the debootstrap tarball, the saved stand-in images and the seed images. */
export const E2E_CACHE = process.env.BERTH_E2E_CACHE ?? resolve(REPO_ROOT, ".cache/e2e");

/**
 * The storage driver of this run's engines: `$BERTH_E2E_STORAGE` (scripts/e2e-env.sh's own switch;
 * vitest.e2e.config.ts sets it per project), default btrfs, what Berth's hosts run by default.
 */
export const E2E_STORAGE: StorageDriver = storageFromEnv(process.env.BERTH_E2E_STORAGE);

function storageFromEnv(value: string | undefined): StorageDriver {
  if (value === undefined || value === "") return "btrfs";
  if (!isStorageDriver(value))
    throw new Error(`BERTH_E2E_STORAGE must be one of ${STORAGE_DRIVERS.join(", ")}, not "${value}"`);
  return value;
}

/** The file system of the engine's data root for `storage` (the Docker volume's on a host). */
export const e2eFilesystem = (storage: StorageDriver = E2E_STORAGE): string =>
  DOCKER_VOLUME_FILESYSTEM[storage];

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function result(r: SpawnSyncReturns<string>): RunResult {
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
}

/** Runs a command (no shell), capturing output. */
export function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  return result(
    spawnSync(cmd, args, {
      encoding: "utf8",
      timeout: options.timeoutMs ?? 120_000,
      input: options.input,
      env: { ...process.env, ...options.env },
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
}

/** Like {@link run} but throws with the command's stderr when it fails. */
export function runOk(cmd: string, args: string[], options: Parameters<typeof run>[2] = {}): string {
  const r = run(cmd, args, options);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${String(r.status)}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** A running private engine. */
export interface Engine {
  workdir: string;
  /** Path of dockerd's Unix socket. */
  socket: string;
  /** `unix://…`, for `docker -H`. */
  host: string;
  /** The seed image its disk started as a copy of (see {@link standinSeed}); unset: an empty disk. */
  seed?: string;
}

/**
 * The seed image of `storage`'s engines (`e2e-env.sh seed`): a file system that already holds the
 * stand-ins, made once per stand-in key and storage choice in `cache` (under its lock, so engines
 * started at once wait for one maker). Undefined, said on stderr, when it cannot be had: the engine
 * then starts on an empty disk and {@link buildStandins} loads the stand-ins as before.
 */
export function standinSeed(storage: StorageDriver = E2E_STORAGE, cache = E2E_CACHE): string | undefined {
  const r = run("bash", [E2E_ENV, "seed", cache], {
    timeoutMs: 45 * 60_000,
    env: { BERTH_E2E_STORAGE: storage },
  });
  const seed = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status === 0 && seed !== "") return seed;
  console.error(`e2e: no ${storage} seed image (an empty disk and docker load instead):\n${r.stderr}`);
  return undefined;
}

/** The environment that makes `e2e-env.sh up` start from `seed` (none: an empty disk). */
export function seedEnv(seed: string | undefined): NodeJS.ProcessEnv {
  return seed === undefined ? {} : { BERTH_E2E_SEED: seed };
}

/** The engine in `workdir` as `e2e-env.sh up` printed it; `seed` when it did start from one. */
export function engineOf(workdir: string, upStdout: string, upStderr: string): Engine {
  const host = upStdout.trim().split("\n").pop() ?? "";
  if (!host.startsWith("unix://")) throw new Error(`e2e-env.sh up printed ${JSON.stringify(upStdout)}`);
  // What became of the seed, on stderr: the copy's time, or a fallback (allowed, never silent).
  for (const line of upStderr.split("\n")) if (/seed/.test(line)) console.error(line);
  const record = resolve(workdir, "seed");
  const seed = existsSync(record) ? readFileSync(record, "utf8").trim() : undefined;
  return { workdir, host, socket: host.slice("unix://".length), ...(seed ? { seed } : {}) };
}

/**
 * `e2e-env.sh up` in a fresh, short work directory under /tmp (dockerd puts Unix sockets below it),
 * with `storage` (default {@link E2E_STORAGE}). On failure the half-made environment is already torn
 * down by the script. `prefix`: of the work directory (bench/engine.ts uses its own). `seed` (default
 * true): the disk starts as a copy of {@link standinSeed}'s image, so the stand-ins are already in
 * the engine; false: an empty disk (bench/engine.ts measures the empty engine and the load).
 */
export function startEngine(
  storage: StorageDriver = E2E_STORAGE,
  prefix = "/tmp/be-",
  options: { dnsSearch?: readonly string[]; env?: NodeJS.ProcessEnv; seed?: boolean } = {},
): Engine {
  const seed = options.seed === false ? undefined : standinSeed(storage);
  const workdir = mkdtempSync(prefix);
  // daemon.json's dns-search, as a host's Ignition sets it (ignition/host.ts dockerDaemonJson).
  const dns = options.dnsSearch ? { BERTH_E2E_DNS_SEARCH: options.dnsSearch.join(" ") } : {};
  const r = run("bash", [E2E_ENV, "up", workdir], {
    timeoutMs: 180_000,
    env: { BERTH_E2E_STORAGE: storage, ...seedEnv(seed), ...dns, ...options.env },
  });
  if (r.status !== 0) throw new Error(`e2e-env.sh up failed (${String(r.status)}):\n${r.stderr}${r.stdout}`);
  return engineOf(workdir, r.stdout, r.stderr);
}

/**
 * The gateway of the engine's default bridge (e2e-env.sh's docker0): on a test engine it plays
 * docker0's 172.17.0.1, which containers reach as they do on a host.
 */
export async function bridgeGateway(engine: Engine): Promise<string> {
  const bridge = await new DockerApi(engine.socket).call("GET", "/networks/bridge");
  const ipam = at(bridge, "IPAM", "Config");
  const gateway = Array.isArray(ipam) ? at(ipam[0], "Gateway") : undefined;
  if (typeof gateway !== "string") throw new Error("the engine's default bridge has no gateway");
  return gateway;
}

/** `e2e-env.sh down`; idempotent. */
export function stopEngine(workdir: string): RunResult {
  return run("bash", [E2E_ENV, "down", workdir], { timeoutMs: 300_000 });
}

/**
 * `e2e-env.sh restart`: stops the engine's dockerd by its recorded pid and starts it again on the
 * same data root (a daemon restart on a host; containers return through their restart policies).
 */
export function restartEngine(engine: Engine): void {
  runOk("bash", [E2E_ENV, "restart", engine.workdir], { timeoutMs: 240_000 });
}

/**
 * Makes sure the stand-in images are in `engine`: nothing to do when it started from a seed (build.sh
 * checks their key labels), otherwise loads them from the cache or, on the first run, builds them.
 * Returns their tags.
 */
export function buildStandins(engine: Engine, cache = E2E_CACHE): string[] {
  const out = runOk("bash", [STANDINS_BUILD, engine.socket, cache], { timeoutMs: 45 * 60_000 });
  return out.trim().split("\n");
}

// --- Engine API ------------------------------------------------------------------------------------

export class DockerApiError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    body: string,
  ) {
    super(`Docker API ${path}: HTTP ${String(status)} ${body}`);
  }
}

/** Container settings, a subset of the Engine API's create body (field names as the API spells them). */
export interface ContainerSpec {
  name: string;
  image: string;
  hostname?: string;
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
  /** Healthcheck test, e.g. `["CMD", "redis-cli", "ping"]`; timing is shortened for tests. */
  healthcheck?: readonly string[];
  /** First network (and static IPv4 address / aliases on it); more with {@link DockerApi.connect}. */
  network?: { name: string; ipv4Address?: string; aliases?: string[] };
  /** Container port → host port on 127.0.0.1 (0: an ephemeral port; read it back with hostPort). */
  publish?: { containerPort: number; hostPort?: number; protocol?: "tcp" | "udp" }[];
  dns?: string[];
  dnsSearch?: string[];
}

/** One file to put into a container before it starts (what the provider's `uploads` do). */
export type Upload = TarFile;

const HEALTH_INTERVAL_NS = 500_000_000;

export class DockerApi {
  constructor(readonly socket: string) {}

  /** One API call; resolves with the parsed JSON body (or the raw text when it is not JSON). */
  async call(
    method: string,
    path: string,
    body?: unknown,
    raw?: Buffer,
    contentType?: string,
  ): Promise<Json> {
    const payload = raw ?? (body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    return new Promise((resolvePromise, reject) => {
      const req = request(
        {
          socketPath: this.socket,
          method,
          path,
          headers: {
            Host: "docker",
            ...(payload
              ? {
                  "Content-Type": contentType ?? "application/json",
                  "Content-Length": String(payload.length),
                }
              : {}),
          },
          timeout: 120_000,
        },
        (res) => {
          readReply(res).then(({ status, text }) => {
            if (status >= 400) reject(new DockerApiError(status, path, text));
            else resolvePromise(replyBody(text));
          }, reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`Docker API ${path}: timed out`)));
      req.on("error", reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  async createNetwork(name: string, ipam?: { subnet: string; gateway: string }): Promise<string> {
    const res = await this.call("POST", "/networks/create", {
      Name: name,
      Driver: "bridge",
      CheckDuplicate: true,
      ...(ipam
        ? { IPAM: { Driver: "default", Config: [{ Subnet: ipam.subnet, Gateway: ipam.gateway }] } }
        : {}),
    });
    return field(res, "Id");
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const ports = spec.publish ?? [];
    const body = {
      Image: spec.image,
      Hostname: spec.hostname ?? spec.name,
      Env: spec.env ?? [],
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ...(spec.healthcheck
        ? {
            Healthcheck: {
              Test: [...spec.healthcheck],
              Interval: HEALTH_INTERVAL_NS,
              Timeout: 10_000_000_000,
              Retries: 3,
              StartPeriod: 0,
            },
          }
        : {}),
      ExposedPorts: Object.fromEntries(
        ports.map((p) => [`${String(p.containerPort)}/${p.protocol ?? "tcp"}`, {}]),
      ),
      HostConfig: {
        NetworkMode: spec.network?.name ?? "bridge",
        PortBindings: Object.fromEntries(
          ports.map((p) => [
            `${String(p.containerPort)}/${p.protocol ?? "tcp"}`,
            [{ HostIp: "127.0.0.1", HostPort: p.hostPort ? String(p.hostPort) : "" }],
          ]),
        ),
        ...(spec.dns ? { Dns: spec.dns } : {}),
        ...(spec.dnsSearch ? { DnsSearch: spec.dnsSearch } : {}),
      },
      ...(spec.network
        ? {
            NetworkingConfig: {
              EndpointsConfig: {
                [spec.network.name]: {
                  Aliases: spec.network.aliases ?? [],
                  ...(spec.network.ipv4Address
                    ? { IPAMConfig: { IPv4Address: spec.network.ipv4Address } }
                    : {}),
                },
              },
            },
          }
        : {}),
    };
    const res = await this.call("POST", `/containers/create?name=${encodeURIComponent(spec.name)}`, body);
    return field(res, "Id");
  }

  /** Puts files into a (created, not yet started) container, as one tar archive at `/`. */
  async upload(container: string, files: readonly Upload[]): Promise<void> {
    await this.call(
      "PUT",
      `/containers/${encodeURIComponent(container)}/archive?path=/`,
      undefined,
      tarArchive(files),
      "application/x-tar",
    );
  }

  async start(container: string): Promise<void> {
    await this.call("POST", `/containers/${encodeURIComponent(container)}/start`);
  }

  async inspect(container: string): Promise<Json> {
    return this.call("GET", `/containers/${encodeURIComponent(container)}/json`);
  }

  async info(): Promise<Json> {
    return this.call("GET", "/info");
  }

  /** Creates, uploads into, and starts a container; returns its id. */
  async runContainer(spec: ContainerSpec, uploads: readonly Upload[] = []): Promise<string> {
    const id = await this.createContainer(spec);
    if (uploads.length > 0) await this.upload(id, uploads);
    await this.start(id);
    return id;
  }

  /** The host port Docker bound on 127.0.0.1 for `containerPort`. */
  async hostPort(container: string, containerPort: number, protocol = "tcp"): Promise<number> {
    const info = await this.inspect(container);
    const ports = at(info, "NetworkSettings", "Ports", `${String(containerPort)}/${protocol}`);
    const first = Array.isArray(ports) ? ports.find((b) => at(b, "HostIp") === "127.0.0.1") : undefined;
    const port = Number(at(first ?? null, "HostPort"));
    if (!Number.isInteger(port) || port <= 0)
      throw new Error(`${container}: ${String(containerPort)} not published`);
    return port;
  }

  /** Waits for the container's health status to become `healthy`; fails fast when it exits. */
  async waitHealthy(container: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Json | undefined = null;
    while (Date.now() < deadline) {
      const info = await this.inspect(container);
      last = at(info, "State");
      if (at(last, "Health", "Status") === "healthy") return;
      if (at(last, "Running") === false) break;
      await sleep(250);
    }
    const logs = run("docker", ["-H", `unix://${this.socket}`, "logs", "--tail", "40", container]);
    throw new Error(
      `${container} did not become healthy: ${JSON.stringify(last)}\nlogs:\n${logs.stdout}${logs.stderr}`,
    );
  }
}

function field(value: Json, key: string): string {
  const v = at(value, key);
  if (typeof v !== "string") throw new Error(`expected ${key} in ${JSON.stringify(value)}`);
  return v;
}
