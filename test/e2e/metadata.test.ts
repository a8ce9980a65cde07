/**
 * Containers cannot reach the cloud's metadata service (169.254.169.254), which serves the host's
 * user data and so dockerd's TLS key: the command the docker.service drop-in runs after dockerd
 * starts (ignition/host.ts `dockerServiceDropin`, taken from the rendered drop-in itself) is run
 * on the end-to-end engine, whose dockerd manages iptables as a host's does.
 *
 * Safety: before anything is sent, a DROP for 169.254.169.254 goes into DOCKER-USER (the guard).
 * Berth's REJECT is inserted above it, so whatever the rule under test does, no packet for the
 * metadata address leaves this machine; the guard's counter shows whether one got past Berth's rule.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METADATA_SERVICE, dockerServiceDropin } from "../../ignition/host.ts";
import { fcosFull } from "../ignition/fixtures.ts";
import { requireE2eTools } from "./support/tools.ts";
import { run, runOk, startEngine, stopEngine, type Engine } from "../../testkit/e2e/support/engine.ts";

const tools = requireE2eTools("metadata service block", [
  { tool: "iptables", debianPackage: "iptables" },
  { tool: "busybox", debianPackage: "busybox-static" },
  { tool: "tar", debianPackage: "tar" },
]);

const GUARD = ["DOCKER-USER", "-d", `${METADATA_SERVICE}/32`, "-j", "DROP"];

/** Packets counted by DOCKER-USER's rules for the metadata address, by target. */
function counters(iptables: string): Record<string, number> {
  const out = runOk(iptables, ["-w", "-L", "DOCKER-USER", "-v", "-n", "-x"]);
  const counts: Record<string, number> = {};
  for (const line of out.split("\n")) {
    const f = line.trim().split(/\s+/);
    // pkts bytes target prot opt in out source destination ...
    if (f.length >= 9 && f[8] === METADATA_SERVICE && f[2] !== undefined)
      counts[f[2]] = (counts[f[2]] ?? 0) + Number(f[0]);
  }
  return counts;
}

describe.skipIf(tools.skip)("containers cannot reach the metadata service", () => {
  let engine: Engine | undefined;
  let scratch = "";
  const iptables = tools.paths.iptables ?? "iptables";
  const docker = (...args: string[]) =>
    run("docker", ["-H", engine?.host ?? "", ...args], { timeoutMs: 60_000 });
  /** The drop-in's ExecStartPost command, with this machine's iptables. */
  const command = (() => {
    const m = /^ExecStartPost=\/bin\/sh -c '(.*)'$/m.exec(dockerServiceDropin(fcosFull));
    return (m?.[1] ?? "").replaceAll("/usr/sbin/iptables", iptables);
  })();
  const connect = () =>
    docker("run", "--rm", "berth-test/busybox:1", "/bin/busybox", "nc", "-w", "3", METADATA_SERVICE, "80");

  beforeAll(() => {
    engine = startEngine();
    scratch = mkdtempSync(join(tmpdir(), "berth-metadata-"));
    const rootfs = join(scratch, "rootfs");
    mkdirSync(join(rootfs, "bin"), { recursive: true });
    copyFileSync(tools.paths.busybox ?? "/bin/busybox", join(rootfs, "bin", "busybox"));
    chmodSync(join(rootfs, "bin", "busybox"), 0o755);
    const tarball = join(scratch, "image.tar");
    runOk("tar", ["-C", rootfs, "-cf", tarball, "bin"]);
    const imported = docker("import", tarball, "berth-test/busybox:1");
    if (imported.status !== 0) throw new Error(imported.stderr);
    // The guard, before any container sends anything.
    runOk(iptables, ["-w", "-I", ...GUARD]);
  }, 5 * 60_000);

  afterAll(() => {
    // Berth's rule and the guard go; the engine's teardown removes DOCKER-USER with its other chains.
    spawnSync("sh", ["-c", command.replace(" -I ", " -D ")]);
    spawnSync(iptables, ["-w", "-D", ...GUARD]);
    if (engine) {
      const stopped = stopEngine(engine.workdir);
      if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 5 * 60_000);

  it("takes the command from the rendered drop-in", () => {
    expect(command).toContain(`-I DOCKER-USER -d ${METADATA_SERVICE}/32 -j REJECT`);
  });

  it("without Berth's rule a container's connection gets as far as the host's forwarding (the guard drops it)", () => {
    const before = counters(iptables).DROP ?? 0;
    const r = connect();
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/refused/i);
    expect(counters(iptables).DROP ?? 0).toBeGreaterThan(before);
  });

  it("with the drop-in's command, added once however often dockerd restarts, the connection is refused at once", () => {
    expect(spawnSync("sh", ["-c", command]).status).toBe(0);
    expect(spawnSync("sh", ["-c", command]).status).toBe(0);
    const rules = runOk(iptables, ["-w", "-S", "DOCKER-USER"])
      .split("\n")
      .filter((l) => l.includes(METADATA_SERVICE) && l.includes("REJECT"));
    expect(rules).toHaveLength(1);

    const guardBefore = counters(iptables).DROP ?? 0;
    const started = Date.now();
    const r = connect();
    const took = Date.now() - started;
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/refused/i);
    expect(counters(iptables).REJECT ?? 0).toBeGreaterThan(0);
    // Nothing reached the guard: Berth's rule stopped it.
    expect(counters(iptables).DROP ?? 0).toBe(guardBefore);
    console.log(`metadata e2e: connection refused after ${String(took)} ms (docker run included)`);
  });
});
