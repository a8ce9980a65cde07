/**
 * The host's `berth-pids-limit` service on an e2e engine: the script and its default taken from the
 * host's Ignition (as `berth-pids-limit.service` runs it on a CI host), started against the engine's
 * socket. `swept()` resolves once its sweep of the existing containers is done; `stop()` ends it (and
 * the `docker events` it reads). Suites that check PidsLimit on an engine start it after the host is
 * applied and stop it in afterAll.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import type { BerthConfig } from "../../../config/types.ts";
import type { IgnitionConfig } from "../../../ignition/index.ts";
import { buildHostIgnition } from "../../../ignition/host.ts";
import { PIDS_LIMIT_SCRIPT, PIDS_LIMIT_UNIT } from "../../../renderers/pids-limit.ts";
import { hostIgnitionBase } from "../../../stack/host-ignition.ts";
import { fileText } from "../../ignition/fixtures.ts";

export interface PidsLimitService {
  /** The default the host's unit gives (`berth:limits.defaultPids`). */
  defaultPids: number;
  /** Everything the script logged so far. */
  log(): string;
  /** Resolves when the sweep is done; rejects after `ms` or when the script exits first. */
  swept(ms?: number): Promise<number>;
  /** Ends the script (SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Writes the host's `berth-pids-limit` script from its Ignition to `path` (0755) and returns the
 * default its unit gives (`BERTH_PIDS_DEFAULT`): the two as `berth-pids-limit.service` runs them.
 */
export function writePidsLimitScript(ign: IgnitionConfig, path: string, what: string): number {
  writeFileSync(path, fileText(ign, `/usr/local/bin/${PIDS_LIMIT_SCRIPT}`), { mode: 0o755 });
  const unit = ign.systemd?.units?.find((u) => u.name === PIDS_LIMIT_UNIT)?.contents ?? "";
  const defaultPids = Number(/^Environment=BERTH_PIDS_DEFAULT=(\d+)$/m.exec(unit)?.[1]);
  if (!Number.isInteger(defaultPids)) throw new Error(`${what}: no ${PIDS_LIMIT_UNIT} in its Ignition`);
  return defaultPids;
}

export function startPidsLimitService(
  config: BerthConfig,
  hostName: string,
  dockerHost: string,
  scratch: string,
): PidsLimitService {
  const ign = buildHostIgnition({
    ...hostIgnitionBase(config, hostName),
    dockerVolumeId: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
  });
  const script = join(scratch, `${PIDS_LIMIT_SCRIPT}-${hostName}`);
  const defaultPids = writePidsLimitScript(ign, script, hostName);
  const child = spawn("bash", [script], {
    env: { ...process.env, DOCKER_HOST: dockerHost, BERTH_PIDS_DEFAULT: String(defaultPids) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    defaultPids,
    log: () => out,
    async swept(ms = 60_000) {
      const t0 = Date.now();
      while (!out.includes("following docker events")) {
        if (child.exitCode !== null || Date.now() - t0 > ms)
          throw new Error(`${PIDS_LIMIT_SCRIPT} did not finish its sweep:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return Date.now() - t0;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
