/**
 * Support for bench/engine.ts: private engines with a chosen storage driver (scripts/e2e-env.sh
 * with BERTH_E2E_STORAGE), their cleanup even on failure, disk readings of the data root, the real
 * TLS material and SSH host keys the mock cannot give, and small statistics.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { DOCKER_BRIDGE_GATEWAY } from "../components/docker-host.ts";
import { loadStack } from "../config/load.ts";
import { runConfig, type StackRun } from "../plan/run.ts";
import type { HarnessOptions } from "../testkit/e2e/harness.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../testkit/e2e/support/certs.ts";
import {
  DockerApi,
  E2E_ENV,
  REPO_ROOT,
  buildStandins,
  run,
  startEngine,
  runOk,
  type Engine,
} from "../testkit/e2e/support/engine.ts";
import { at, type Json } from "../lib/json.ts";
import { DOCKER_VOLUME_FILESYSTEM, STORAGE_DRIVERS, type StorageDriver } from "../renderers/storage.ts";

/** The storage setups compared: a storage driver on its file system (hosts.storageDriver's choices). */
export type Storage = StorageDriver;
export const STORAGES: readonly Storage[] = STORAGE_DRIVERS;
export const FILESYSTEM: Readonly<Record<Storage, string>> = DOCKER_VOLUME_FILESYSTEM;

export const HOST = "testing-ci-1";

// --- engines, cleaned up whatever happens -----------------------------------------------------------

/** Engines started and not yet stopped (normally at most one: they share a bridge range). */
const live = new Set<string>();

/** `e2e-env.sh down` for every engine still up (synchronous, so it also works from signal handlers). */
export function stopAllEngines(): void {
  for (const workdir of [...live]) {
    const r = run("bash", [E2E_ENV, "down", workdir], { timeoutMs: 300_000 });
    if (r.status !== 0) console.error(`bench: e2e-env.sh down ${workdir} failed:\n${r.stderr}`);
    live.delete(workdir);
  }
}

let handlersInstalled = false;
/** Stops the engines on SIGINT/SIGTERM, on an uncaught error, and when `limitMs` is exceeded. */
export function installCleanup(limitMs: number): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      console.error(`bench: ${signal}, cleaning up`);
      stopAllEngines();
      process.exit(130);
    });
  }
  process.on("exit", () => stopAllEngines());
  const timer = setTimeout(() => {
    console.error(`bench: over the time limit (${String(limitMs / 1000)} s), cleaning up`);
    stopAllEngines();
    process.exit(124);
  }, limitMs);
  timer.unref();
}

/**
 * A fresh private engine on a fresh loop file (`e2e-env.sh up`), with `storage`. Only one engine
 * runs at a time: they all use the e2e bridge and address pool.
 */
export function startEngineWith(storage: Storage): Engine {
  if (live.size > 0) throw new Error(`an engine is still up (${[...live].join(", ")}); stop it first`);
  // An empty disk (no seed image): the readings and the load are what the benchmark measures.
  const engine = startEngine(storage, "/tmp/bb-", { seed: false });
  live.add(engine.workdir);
  return engine;
}

export function stopEngineOf(engine: Engine): void {
  const r = run("bash", [E2E_ENV, "down", engine.workdir], { timeoutMs: 300_000 });
  live.delete(engine.workdir);
  if (r.status !== 0) throw new Error(`e2e-env.sh down ${engine.workdir} failed:\n${r.stderr}`);
}

/** Starts an engine, checks its driver and file system, loads the stand-ins; runs `body`; stops it. */
export async function withEngine<T>(
  storage: Storage,
  body: (engine: Engine, setup: EngineSetup) => Promise<T>,
): Promise<T> {
  let t = performance.now();
  const engine = startEngineWith(storage);
  try {
    const upMs = performance.now() - t;
    const info = await new DockerApi(engine.socket).info();
    const driver = at(info, "Driver");
    const fs = runOk("findmnt", ["-n", "-o", "FSTYPE", dataRoot(engine)]).trim();
    if (driver !== storage || fs !== FILESYSTEM[storage])
      throw new Error(
        `expected ${storage} on ${FILESYSTEM[storage]}, the engine runs ${String(driver)} on ${fs}`,
      );
    const empty = await diskReading(engine, storage);
    t = performance.now();
    buildStandins(engine);
    const loadMs = performance.now() - t;
    const loaded = await diskReading(engine, storage);
    return await body(engine, { upMs, loadMs, empty, loaded });
  } finally {
    stopEngineOf(engine);
  }
}

export interface EngineSetup {
  upMs: number;
  /** `images/standins/build.sh` from the cache: `docker load` of the saved stand-ins. */
  loadMs: number;
  empty: DiskReading;
  loaded: DiskReading;
}

export const dataRoot = (engine: Engine): string => join(engine.workdir, "mnt");

// --- disk -------------------------------------------------------------------------------------------

export interface DiskReading {
  /** statfs of the data root's file system (what `df` prints): bytes used. */
  usedBytes: number;
  /** Inodes in use (btrfs allocates inodes dynamically and reports none). */
  inodesUsed: number;
  inodesTotal: number;
}

/**
 * Flushes the data root's file system and reads `df`. With `settle`, on btrfs it first waits for
 * deleted subvolumes to be cleaned (`btrfs subvolume sync`), since btrfs frees their space in the
 * background.
 */
export async function diskReading(engine: Engine, storage: Storage, settle = false): Promise<DiskReading> {
  const mnt = dataRoot(engine);
  if (storage === "btrfs") {
    if (settle) run("btrfs", ["subvolume", "sync", mnt], { timeoutMs: 180_000 });
    run("btrfs", ["filesystem", "sync", mnt], { timeoutMs: 120_000 });
  }
  run("sync", ["-f", mnt], { timeoutMs: 120_000 });
  const s = statfsSync(mnt);
  await Promise.resolve();
  return {
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    inodesUsed: s.files - s.ffree,
    inodesTotal: s.files,
  };
}

export interface SystemDf {
  /** Sum of the containers' writable layers (SizeRw). */
  containersBytes: number;
  /** Sum of the local volumes' sizes. */
  volumesBytes: number;
  imagesBytes: number;
}

/** `docker system df` through the Engine API (byte counts instead of rounded strings). */
export async function systemDf(api: DockerApi): Promise<SystemDf> {
  let df: Json;
  try {
    df = await api.call("GET", "/system/df");
  } catch (e) {
    // Measured: with 50 agents on btrfs, /system/df did not answer within the client's 120 s.
    console.error(`bench: /system/df failed: ${String(e)}`);
    return { containersBytes: Number.NaN, volumesBytes: Number.NaN, imagesBytes: Number.NaN };
  }
  const sum = (list: Json | undefined, ...keys: string[]) =>
    Array.isArray(list) ? list.reduce<number>((n, x) => n + Math.max(0, Number(at(x, ...keys) ?? 0)), 0) : 0;
  return {
    containersBytes: sum(at(df, "Containers"), "SizeRw"),
    volumesBytes: sum(at(df, "Volumes"), "UsageData", "Size"),
    imagesBytes: Number(at(df, "LayersSize") ?? 0),
  };
}

export const mib = (bytes: number): string =>
  Number.isNaN(bytes) ? "timed out" : (bytes / 1024 / 1024).toFixed(1);

// --- statistics ---------------------------------------------------------------------------------------

/** Nearest-rank percentile of `values` (0 < p ≤ 100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

export const ratio = (a: number, b: number): string => (b === 0 ? "n/a" : (a / b).toFixed(2));

/** A Markdown table (aligned like the ones in docs/performance.md). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

// --- the program's host, with real keys --------------------------------------------------------------

export interface HostInputs {
  stack: StackRun;
  options: HarnessOptions;
  /** Real host keys for an agent (the mock's are not keys), by file path in the container. */
  agentHostKeys: Record<string, string>;
  scratch: string;
}

/**
 * The REAL program for the `testing` stack under mocks, and what services.test.ts substitutes to
 * run it here: a real TLS key and certificate for the registry's nginx, real SSH host keys per
 * agent, published IPs mapped to 127.0.0.1, health checks every second.
 */
export async function hostInputs(): Promise<HostInputs> {
  const scratch = mkdtempSync(join(tmpdir(), "berth-bench-"));
  const k = (name: string, ...args: string[]) => {
    runOk("ssh-keygen", ["-q", "-N", "", "-C", `bench-${name}`, "-f", join(scratch, name), ...args]);
    return join(scratch, name);
  };
  const client = k("client", "-t", "ed25519");
  const config = loadStack(REPO_ROOT, "testing");
  config.jenkins.agentPublicKey = readFileSync(`${client}.pub`, "utf8").trim();
  const stack = await runConfig(config);
  const privateIp = config.hosts.addresses[config.hosts.names.indexOf(HOST)] as string;

  issueRegistryTls({
    workDir: scratch,
    caCertPath: join(scratch, "ca.crt"),
    caName: "berth bench registry CA",
    hostname: config.registry.hostname,
    privateIp,
  });
  const substituteUploads: Record<string, Record<string, string>> = {
    "registry-nginx": {
      "/etc/nginx/berth/registry.crt": readFileSync(join(scratch, "server.crt"), "utf8"),
      "/etc/nginx/berth/registry.key": readFileSync(join(scratch, "server.key"), "utf8"),
    },
  };
  const keysFor = (agent: string): Record<string, string> => agentHostKeyUploads(scratch, agent);
  for (let n = 1; n <= config.jenkins.agentsPerHost; n++) {
    const agent = `jenkins-agent-${String(n)}`;
    substituteUploads[agent] = keysFor(agent);
  }
  const hostRoot = join(scratch, "host-root");
  mkdirSync(join(hostRoot, "var/lib/berth/textfile"), { recursive: true });
  return {
    stack,
    scratch,
    agentHostKeys: keysFor("bench-agent"),
    options: {
      publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
      substituteUploads,
      healthInterval: "1s",
      // node_exporter's bind of the host's `/`: an empty directory of the bench's own.
      hostPathMap: { "/": hostRoot },
    },
  };
}

export function removeScratch(inputs: HostInputs | undefined): void {
  if (inputs?.scratch) rmSync(inputs.scratch, { recursive: true, force: true });
}
