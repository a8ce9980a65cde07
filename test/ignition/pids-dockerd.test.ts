/**
 * berth-pids-limit, exactly as rendered into a host's Ignition, run against a REAL dockerd on a btrfs
 * loop volume (test/support/dockerd-btrfs.sh), as its systemd unit runs it (BERTH_PIDS_DEFAULT from
 * the unit, DOCKER_HOST the test engine's socket):
 * - containers that existed before the service started (one labelled, one not, one stopped) get
 *   their limits from its sweep;
 * - a labelled container started later gets its label's limit, an unlabelled one the default, one
 *   run with its own --pids-limit keeps it, a bad label gets the default;
 * - a container created (not started) gets its limit from the create event, so it starts limited;
 * - a fork loop in a limited container is refused at the limit: bounded in count and in time.
 *
 * Needs root and the machine-wide e2e lock: `flock /tmp/berth-e2e.lock npx vitest run <this file>`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildHostIgnition } from "../../ignition/index.ts";
import { PIDS_LIMIT_LABEL, PIDS_LIMIT_SCRIPT } from "../../renderers/pids-limit.ts";
import { writeBusyboxRootfs } from "../support/busybox.ts";
import { DOCKERD_BTRFS_TOOLS, requireTools } from "../support/tools.ts";
import { writePidsLimitScript } from "../e2e/support/pids-limit.ts";
import { fcosFull } from "./fixtures.ts";

const SCRIPT = resolve(import.meta.dirname, "../support/dockerd-btrfs.sh");
const tools = requireTools(
  "berth-pids-limit against a real dockerd",
  [...DOCKERD_BTRFS_TOOLS, { tool: "busybox", debianPackage: "busybox-static" }],
  { needsRoot: true },
);
const IMAGE = "berth-test/busybox:1";

describe.skipIf(tools.skip)("berth-pids-limit against a real dockerd", () => {
  let workdir = "";
  let sock = "";
  let script = "";
  let defaultPids = 0;
  let started: ReturnType<typeof spawnSync> | undefined;
  let service: ChildProcess | undefined;
  let serviceLog = "";

  const run = (cmd: string, args: string[], timeout = 120_000) =>
    spawnSync(cmd, args, {
      encoding: "utf8",
      env: { ...process.env, DOCKER_HOST: `unix://${sock}` },
      timeout,
    });
  const docker = (...args: string[]) => {
    const r = run("docker", args);
    if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const pidsLimit = (name: string) => {
    const v = docker("inspect", "--format", "{{.HostConfig.PidsLimit}}", name);
    return /^-?\d+$/.test(v) ? Number(v) : 0;
  };
  /** Polls until `name`'s PidsLimit is `want` (at most `ms`); returns how long it took. */
  const until = async (name: string, want: number, ms = 10_000) => {
    const t0 = Date.now();
    while (pidsLimit(name) !== want) {
      if (Date.now() - t0 > ms)
        throw new Error(`${name}: PidsLimit ${String(pidsLimit(name))}, not ${String(want)}:\n${serviceLog}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return Date.now() - t0;
  };
  /** The container's pids.max as its cgroup has it (v2 or v1 layout), read from inside. */
  const pidsMax = (name: string) =>
    docker(
      "exec",
      name,
      "sh",
      "-c",
      "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    );
  /** The container's pids.current, read on the host from its init process's cgroup (v1 or v2). */
  const hostPidsCurrent = (name: string) => {
    const pid = docker("inspect", "--format", "{{.State.Pid}}", name);
    const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
    const v1 = lines.find((l) => /^\d+:([^:]*,)?pids(,[^:]*)?:/.test(l));
    const path = v1
      ? `/sys/fs/cgroup/pids${v1.split(":")[2] ?? ""}`
      : `/sys/fs/cgroup${(lines.find((l) => l.startsWith("0::")) ?? "0::").slice(3)}`;
    return Number(readFileSync(join(path, "pids.current"), "utf8").trim());
  };
  const sleeper = (name: string, ...opts: string[]) =>
    docker("run", "-d", "--name", name, ...opts, IMAGE, "sleep", "3600");

  beforeAll(() => {
    workdir = mkdtempSync(join(tmpdir(), "bp-"));
    sock = join(workdir, "docker.sock");
    writeFileSync(
      join(workdir, "daemon.json"),
      JSON.stringify({ "storage-driver": "btrfs", iptables: false, "ip-forward": false }),
    );
    started = spawnSync("bash", [SCRIPT, "start", workdir], {
      encoding: "utf8",
      env: { ...process.env, BERTH_BRIDGE_CIDR: "10.213.13.1/24", BERTH_DISK_SIZE: "1G" },
      timeout: 170_000,
    });
    // The script and the default exactly as a Fedora CoreOS host gets them.
    const config = buildHostIgnition(fcosFull);
    script = join(workdir, PIDS_LIMIT_SCRIPT);
    defaultPids = writePidsLimitScript(config, script, fcosFull.name);
    // A busybox image: sh, sleep, cat.
    const rootfs = join(workdir, "rootfs");
    writeBusyboxRootfs(
      rootfs,
      tools.paths.busybox ?? "/bin/busybox",
      ["sh", "sleep", "cat", "true"],
      ["tmp"],
    );
    if (started.status === 0) {
      expect(spawnSync("tar", ["-C", rootfs, "-cf", join(workdir, "rootfs.tar"), "."]).status).toBe(0);
      docker("import", join(workdir, "rootfs.tar"), IMAGE);
    }
  }, 180_000);

  afterAll(async () => {
    if (service && service.exitCode === null) {
      const exited = new Promise((r) => service?.once("exit", r));
      service.kill("SIGTERM");
      await exited;
    }
    if (!workdir) return;
    const stopped = spawnSync("bash", [SCRIPT, "stop", workdir], { encoding: "utf8", timeout: 170_000 });
    if (stopped.status === 0) rmSync(workdir, { recursive: true, force: true });
    else console.error(`dockerd-btrfs.sh stop failed, leaving ${workdir}:\n${stopped.stderr}`);
  }, 180_000);

  it("starts dockerd on btrfs, and the host's unit gives the default", () => {
    expect(started?.status, String(started?.stderr)).toBe(0);
    expect(defaultPids).toBe(fcosFull.pidsLimit?.defaultPids);
  });

  it("its sweep limits containers that existed before it started, running or not", async () => {
    sleeper("before-labelled", "--label", `${PIDS_LIMIT_LABEL}=40`);
    sleeper("before-plain");
    docker("create", "--name", "before-stopped", "--label", `${PIDS_LIMIT_LABEL}=45`, IMAGE, "true");
    expect(pidsLimit("before-labelled")).toBe(0);
    expect(pidsLimit("before-plain")).toBe(0);

    service = spawn("bash", [script], {
      env: { ...process.env, DOCKER_HOST: `unix://${sock}`, BERTH_PIDS_DEFAULT: String(defaultPids) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    service.stdout?.on("data", (d: Buffer) => (serviceLog += d.toString()));
    service.stderr?.on("data", (d: Buffer) => (serviceLog += d.toString()));
    const t0 = Date.now();
    while (!serviceLog.includes("following docker events")) {
      if (Date.now() - t0 > 30_000 || service.exitCode !== null) throw new Error(`no sweep:\n${serviceLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(serviceLog).toContain(`swept 3 containers (default ${String(defaultPids)})`);
    expect(pidsLimit("before-labelled")).toBe(40);
    expect(pidsLimit("before-plain")).toBe(defaultPids);
    expect(pidsLimit("before-stopped")).toBe(45);
    expect(pidsMax("before-labelled")).toBe("40");
    expect(pidsMax("before-plain")).toBe(String(defaultPids));
  }, 60_000);

  it("containers started later: the label's limit, else the default; an own --pids-limit stays; a bad label gets the default", async () => {
    const times: Record<string, number> = {};
    sleeper("later-labelled", "--label", `${PIDS_LIMIT_LABEL}=50`);
    times.labelled = await until("later-labelled", 50);
    sleeper("later-plain");
    times.plain = await until("later-plain", defaultPids);
    sleeper("later-own", "--pids-limit", "300");
    sleeper("later-bad", "--label", `${PIDS_LIMIT_LABEL}=lots`);
    times.bad = await until("later-bad", defaultPids);
    // The own limit is left alone (the service has handled later-bad, started after it, by now).
    await new Promise((r) => setTimeout(r, 500));
    expect(pidsLimit("later-own")).toBe(300);
    expect(pidsMax("later-labelled")).toBe("50");
    expect(serviceLog).toContain("later-bad: label org.berth.pids-limit=lots is not a positive integer");
    console.log(`pids: limits applied after \`docker run -d\` returned, in ms: ${JSON.stringify(times)}`);
  }, 60_000);

  it("a created container gets its limit from the create event, before it ever runs", async () => {
    docker("create", "--name", "created", "--label", `${PIDS_LIMIT_LABEL}=60`, IMAGE, "sleep", "3600");
    await until("created", 60);
    docker("start", "created");
    expect(pidsMax("created")).toBe("60");
  }, 60_000);

  it("a fork loop in a limited container is refused at the limit, and ends", () => {
    sleeper("forker", "--label", `${PIDS_LIMIT_LABEL}=32`);
    return until("forker", 32).then(() => {
      const t0 = Date.now();
      // Forks sleepers until the kernel refuses a fork (busybox sh then exits non-zero); at most 1000.
      const r = run(
        "docker",
        [
          "exec",
          "forker",
          "sh",
          "-c",
          'i=0; while [ "$i" -lt 1000 ]; do sleep 600 & i=$((i+1)); done; echo "forked $i"',
        ],
        60_000,
      );
      const ms = Date.now() - t0;
      const count = hostPidsCurrent("forker");
      // Full: not even a `docker exec` gets a process in it now.
      const exec = run("docker", ["exec", "forker", "true"]);
      console.log(
        `pids: fork loop under a limit of 32: exit ${String(r.status)} after ${String(ms)} ms, ${String(count)} tasks; ${r.stderr.trim()}`,
      );
      expect(r.status, r.stdout).not.toBe(0);
      expect(r.stdout).not.toContain("forked 1000");
      expect(r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
      expect(count).toBeLessThanOrEqual(32);
      expect(count).toBeGreaterThan(20);
      expect(ms).toBeLessThan(30_000);
      expect(exec.status).not.toBe(0);
      console.log(`pids: docker exec into the full container: ${exec.stderr.trim()}`);
    });
  }, 90_000);

  it("exits when dockerd's event stream ends, so systemd restarts it", async () => {
    // Stop only this test's dockerd, by the pid the start script recorded: the stream must end.
    const restarted = spawnSync("bash", [SCRIPT, "restart", workdir], { encoding: "utf8", timeout: 170_000 });
    expect(restarted.status, restarted.stderr).toBe(0);
    const t0 = Date.now();
    while (service?.exitCode === null && Date.now() - t0 < 30_000)
      await new Promise((r) => setTimeout(r, 50));
    expect(service?.exitCode, serviceLog).toBe(1);
    expect(serviceLog).toContain("the docker event stream ended");
  }, 200_000);
});
