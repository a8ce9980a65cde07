/**
 * Application slots (seed 004, build step 5) on a real dockerd on btrfs.
 *
 * The REAL program for `testing-ci-1` (under Pulumi's mocks), with staging's slots (the shipped
 * stack that declares one) added to testing's configuration, is applied to a private engine with
 * testkit/e2e/harness.ts: among the rest, the slot's front `slot-shop`, publishing the slot's port on
 * the host's private address (mapped by the harness to a free port on the engine's bridge gateway).
 * A static agent container (the agent stand-in, which ships berth-slot) with the engine's socket
 * mounted plays the build: `berth-slot deploy shop <image>`.
 *
 * The application images are built on the engine FROM the holder stand-in (busybox httpd, no
 * network needed): v1 and v2 serve their version and /healthz; "sick" serves no /healthz (404);
 * "crash" exits at once.
 */
import { readFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { SLOT_APP, SLOT_FRONT, SLOT_LABEL, slotAppName, slotFrontName } from "../../components/slots.ts";
import { BERTH_HOST_LABEL, BERTH_STACK_LABEL } from "../../config/containers.ts";
import { loadStack } from "../../config/load.ts";
import type { AppSlot, BerthConfig } from "../../config/types.ts";
import { judgeSlots } from "../../cli/drift-slots.ts";
import { driftHost } from "../../cli/drift.ts";
import { Engine as DriftEngine } from "../../cli/engine.ts";
import { declaredHosts } from "../../plan/declared.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";
import { applyHostToEngine, type AppliedHost } from "../../testkit/e2e/harness.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  bridgeGateway,
  buildStandins,
  REPO_ROOT,
  run,
  runOk,
  startEngine,
  stopEngine,
  type Engine,
  type RunResult,
} from "../../testkit/e2e/support/engine.ts";
import { at } from "../../lib/json.ts";
import { retargetHolders, viaPublishedPort } from "./support/holders.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";

const HOST = "testing-ci-1";
const HOLDER_STANDIN = "berth-standin/holder:latest";

const tools = requireE2eTools("application slots", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]);

/** An application image: busybox httpd on the slot's port, serving `version` and (unless sick) /healthz. */
function appDockerfile(port: number, version: string, kind: "ok" | "sick" | "crash"): string {
  const files =
    kind === "sick"
      ? `mkdir -p /www && echo ${version} > /www/index.html`
      : `mkdir -p /www && echo ${version} > /www/index.html && echo ok > /www/healthz`;
  const entry =
    kind === "crash"
      ? `["/bin/sh", "-c", "echo crashing; exit 3"]`
      : `["busybox", "httpd", "-f", "-p", "${String(port)}", "-h", "/www"]`;
  return [`FROM ${HOLDER_STANDIN}`, `RUN ${files}`, `ENTRYPOINT ${entry}`, ""].join("\n");
}

describe.skipIf(tools.skip)("application slots (berth-slot) on a real Docker engine", () => {
  let engine: Engine | undefined;
  let applied: AppliedHost;
  let config: BerthConfig;
  let stack: StackRun;
  let slot: AppSlot;
  let scratch = "";
  let slotUrl = "";
  const timings: string[] = [];
  const docker = (...args: string[]) => run("docker", ["-H", engine?.host ?? "", ...args]);
  const dockerOk = (...args: string[]) => runOk("docker", ["-H", engine?.host ?? "", ...args]);
  /** A job's command in the agent container, as user jenkins (the socket's group added). */
  const job = (script: string): RunResult =>
    run("docker", ["-H", engine?.host ?? "", "exec", "-u", "jenkins", "e2e-agent", "bash", "-c", script], {
      timeoutMs: 300_000,
    });
  const deploy = (image: string): RunResult => {
    const t = Date.now();
    const r = job(`berth-slot deploy ${slot.name} ${image}`);
    timings.push(`berth-slot deploy ${image}: exit ${String(r.status)} in ${String(Date.now() - t)} ms`);
    return r;
  };
  /** What the slot's port answers on the host's (mapped) private address. */
  const answer = async (path = "/"): Promise<string> => {
    const res = await fetch(`${slotUrl}${path}`, { signal: AbortSignal.timeout(5000) });
    return `${String(res.status)} ${(await res.text()).trim()}`;
  };
  const idOf = (name: string) => docker("inspect", "--format", "{{.Id}}", name).stdout.trim();
  /** The slot's application containers (the front, `slot-<name>`, is the program's). */
  const slotContainers = () =>
    dockerOk(
      "ps",
      "-a",
      "--filter",
      `label=${SLOT_LABEL}.name=shop`,
      "--filter",
      `label=${SLOT_LABEL}=${SLOT_APP}`,
      "--format",
      "{{.Names}}",
    )
      .trim()
      .split("\n")
      .filter((n) => n !== "")
      .sort();

  beforeAll(async () => {
    const t0 = Date.now();
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-slots-"));
    config = loadStack(REPO_ROOT, "testing");
    const staging = loadStack(REPO_ROOT, "staging");
    const stagingSlots = staging.services.slots ?? [];
    expect(stagingSlots.length).toBeGreaterThan(0);
    slot = stagingSlots[0] as AppSlot;
    config = {
      ...config,
      services: { ...config.services, slots: stagingSlots, slotCidrs: staging.services.slotCidrs ?? [] },
    };
    stack = await runConfig(config);
    const privateIp = config.hosts.addresses[config.hosts.names.indexOf(HOST)] as string;
    const tls = issueRegistryTls({
      workDir: scratch,
      caCertPath: join(scratch, "ca.crt"),
      caName: "berth e2e registry CA",
      hostname: config.registry.hostname,
      privateIp,
    });
    const substituteUploads: Record<string, Record<string, string>> = {
      "registry-nginx": {
        "/etc/nginx/berth/registry.crt": readFileSync(tls.serverCertPath, "utf8"),
        "/etc/nginx/berth/registry.key": readFileSync(tls.serverKeyPath, "utf8"),
      },
    };
    for (let n = 1; n <= config.jenkins.agentsPerHost; n++)
      substituteUploads[`jenkins-agent-${String(n)}`] = agentHostKeyUploads(
        scratch,
        `jenkins-agent-${String(n)}`,
      );
    let t = Date.now();
    engine = startEngine();
    buildStandins(engine);
    timings.push(`engine and stand-ins: ${String(Date.now() - t)} ms`);
    const gateway = await bridgeGateway(engine);
    t = Date.now();
    applied = await applyHostToEngine(stack, HOST, engine, {
      publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
      hostIp: gateway,
      substituteUploads,
      healthInterval: "1s",
    });
    await retargetHolders(applied, viaPublishedPort);
    await applied.waitAllHealthy(180_000);
    timings.push(`${HOST} applied and healthy: ${String(Date.now() - t)} ms`);
    slotUrl = `http://${gateway}:${String(applied.port(slotFrontName(slot.name), slot.port, privateIp))}`;

    // The build's images, built on the engine itself.
    t = Date.now();
    for (const [tag, version, kind] of [
      ["e2e-app:v1", "v1", "ok"],
      ["e2e-app:v2", "v2", "ok"],
      ["e2e-app:sick", "sick", "sick"],
      ["e2e-app:crash", "crash", "crash"],
    ] as const)
      runOk("docker", ["-H", engine.host, "build", "-q", "-t", tag, "-"], {
        input: appDockerfile(slot.port, version, kind),
        env: { DOCKER_BUILDKIT: "0" },
      });
    timings.push(`four application images built: ${String(Date.now() - t)} ms`);

    // A static agent with the engine's socket, as jenkins.dockerAccess.static: socket gives it.
    const gid = statSync(engine.socket).gid;
    dockerOk(
      "run",
      "-d",
      "--name",
      "e2e-agent",
      "--network",
      "ci-services",
      "--dns",
      config.services.dnsAddress,
      "-v",
      `${engine.socket}:/var/run/docker.sock`,
      "--group-add",
      String(gid),
      "--entrypoint",
      "sleep",
      standinFor(config.jenkins.image),
      "infinity",
    );
    console.log(
      `e2e: setup ${String(Date.now() - t0)} ms; ${timings.join("; ")}\n` +
        `e2e: mappings:\n  ${applied.plan.mappings.join("\n  ")}`,
    );
  }, 45 * 60_000);

  afterAll(() => {
    console.log(`e2e: slot timings:\n  ${timings.join("\n  ")}`);
    try {
      if (engine) {
        const stopped = stopEngine(engine.workdir);
        if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
      }
    } finally {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  }, 5 * 60_000);

  it("the program's front carries the slot's definition and publishes its port on the private address; the agent ships berth-slot", async () => {
    const front = await applied.api.inspect(slotFrontName(slot.name));
    const labels = (at(front, "Config", "Labels") ?? {}) as Record<string, string>;
    expect(labels[SLOT_LABEL]).toBe(SLOT_FRONT);
    expect(labels[`${SLOT_LABEL}.name`]).toBe(slot.name);
    expect(labels[`${SLOT_LABEL}.port`]).toBe(String(slot.port));
    expect(labels[`${SLOT_LABEL}.health.http`]).toBe(slot.health.http);
    expect(labels[BERTH_STACK_LABEL]).toBe("testing");
    expect(labels[BERTH_HOST_LABEL]).toBe(HOST);
    const privateIp = config.hosts.addresses[0] as string;
    expect(
      applied.plan.ports.filter((p) => p.container === slotFrontName(slot.name)).map((p) => p.ip),
    ).toEqual([privateIp]);
    expect(dockerOk("exec", "e2e-agent", "cat", "/usr/local/bin/berth-slot")).toBe(
      readFileSync(join(REPO_ROOT, "images/jenkins-agent/berth-slot"), "utf8"),
    );
    // No application yet: the port accepts and closes (nothing to forward to).
    await expect(answer()).rejects.toThrow();
    expect(job(`berth-slot status ${slot.name}`).stdout.trim()).toBe(`slot ${slot.name}: no application`);
  }, 60_000);

  it("a build deploys v1: it answers on the slot's port, with the slot's labels, limits, network and resolver, and reaches the production-like services by name", async () => {
    const r = deploy("e2e-app:v1");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${slotAppName(slot.name)}\n`);
    expect(await answer()).toBe("200 v1");
    const info = await applied.api.inspect(slotAppName(slot.name));
    const labels = (at(info, "Config", "Labels") ?? {}) as Record<string, string>;
    expect(labels[SLOT_LABEL]).toBe(SLOT_APP);
    expect(labels[`${SLOT_LABEL}.name`]).toBe(slot.name);
    expect(labels[`${SLOT_LABEL}.image`]).toBe("e2e-app:v1");
    expect(labels[BERTH_STACK_LABEL]).toBe("testing");
    expect(labels[BERTH_HOST_LABEL]).toBe(HOST);
    expect(at(info, "HostConfig", "Memory")).toBe(slot.memoryMiB * 1024 * 1024);
    expect(at(info, "HostConfig", "MemorySwap")).toBe(slot.memoryMiB * 1024 * 1024);
    expect(at(info, "HostConfig", "NanoCpus")).toBe(Math.round(slot.cpus * 1e9));
    expect(at(info, "HostConfig", "RestartPolicy", "Name")).toBe("unless-stopped");
    expect(at(info, "HostConfig", "Dns")).toEqual([config.services.dnsAddress]);
    expect(at(info, "HostConfig", "DnsSearch")).toEqual(config.dns.searchDomains);
    expect(Object.keys((at(info, "NetworkSettings", "Networks") ?? {}) as object)).toEqual(["ci-services"]);
    // The application itself publishes nothing: the front does.
    expect(at(info, "HostConfig", "PortBindings") ?? {}).toEqual({});
    const redis = config.services.productionLike.find((s) => s.kind === "redis");
    expect(redis).toBeDefined();
    for (const name of [redis?.name ?? "", `${redis?.name ?? ""}.${config.dns.searchDomains[0] ?? ""}`]) {
      const pong = docker(
        "exec",
        slotAppName(slot.name),
        "sh",
        "-c",
        `printf 'PING\\r\\n' | nc -w 3 ${name} 6379`,
      );
      expect(pong.stdout, `${name}: ${pong.stderr}`).toBe("+PONG\r\n");
    }
    expect(slotContainers()).toEqual([slotAppName(slot.name)]);
  }, 180_000);

  it("the next build replaces it with v2: the new one answers on the slot's port and the old one is gone", async () => {
    const old = idOf(slotAppName(slot.name));
    const r = deploy("e2e-app:v2");
    expect(r.status, r.stderr).toBe(0);
    expect(await answer()).toBe("200 v2");
    const now = idOf(slotAppName(slot.name));
    expect(now).not.toBe(old);
    expect(docker("inspect", old).status).not.toBe(0);
    expect(slotContainers()).toEqual([slotAppName(slot.name)]);
    expect(job(`berth-slot status ${slot.name}`).stdout.trim()).toBe(
      `slot ${slot.name}: ${slotAppName(slot.name)} e2e-app:v2 running`,
    );
  }, 180_000);

  it("an unhealthy new image (no /healthz) is removed and the old one keeps serving", async () => {
    const live = idOf(slotAppName(slot.name));
    const r = job(`BERTH_SLOT_TIMEOUT=8 berth-slot deploy ${slot.name} e2e-app:sick`);
    timings.push(`berth-slot deploy e2e-app:sick (timeout 8 s): exit ${String(r.status)}`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `is not healthy after 8s (HTTP GET ${slot.health.http ?? ""} on port ${String(slot.port)})`,
    );
    expect(r.stderr).toContain(`${slotAppName(slot.name)} stays live with e2e-app:v2`);
    expect(idOf(slotAppName(slot.name))).toBe(live);
    expect(slotContainers()).toEqual([slotAppName(slot.name)]);
    expect(await answer()).toBe("200 v2");
  }, 120_000);

  it("a new image that exits at once is refused without waiting out the timeout; the old one keeps serving", async () => {
    const t = Date.now();
    const r = job(`berth-slot deploy ${slot.name} e2e-app:crash`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("stopped before it was healthy");
    expect(r.stderr).toContain("crashing");
    expect(Date.now() - t).toBeLessThan((slot.health.timeoutSeconds * 1000) / 2);
    expect(slotContainers()).toEqual([slotAppName(slot.name)]);
    expect(await answer()).toBe("200 v2");
  }, 180_000);

  it("drift: the slot's application is no orphan; a labelled container of an undeclared slot is; an unlabelled one in the slot's name is foreign", async () => {
    const declared = declaredHosts(stack).get(HOST);
    if (!declared) throw new Error(`${HOST} declares nothing`);
    // An unlabelled container squatting the slot's -old name, and an application of a slot no longer declared.
    dockerOk("create", "--name", `slot-${slot.name}-old`, HOLDER_STANDIN, "true");
    dockerOk(
      "create",
      "--name",
      "slot-gone-app",
      "--label",
      `${SLOT_LABEL}=${SLOT_APP}`,
      "--label",
      `${SLOT_LABEL}.name=gone`,
      "--label",
      `${BERTH_STACK_LABEL}=testing`,
      "--label",
      `${BERTH_HOST_LABEL}=${HOST}`,
      HOLDER_STANDIN,
      "true",
    );
    const e = new DriftEngine(engine?.host ?? "");
    try {
      const j = await judgeSlots(e, "testing", declared);
      expect([...j.applications]).toEqual([slotAppName(slot.name)]);
      expect(j.undeclared.map((u) => [u.name, u.slot])).toEqual([["slot-gone-app", "gone"]]);
      expect(j.foreign.map((f) => f.name)).toEqual([`slot-${slot.name}-old`]);
      expect(j.foreign[0]?.details.join(" ")).toContain("not made by berth-slot");
      expect(j.stopped).toEqual([]);
      expect(j.notes).toContain(
        `slot ${slot.name}: ${slotAppName(slot.name)} runs e2e-app:v2 (deployed by berth-slot)`,
      );
      // In the whole report: no orphan for the live application, the undeclared one an orphan, the
      // squatter foreign (other findings come from the harness's mappings and are not judged here).
      const report = await driftHost(e, "testing", declared);
      const of = (name: string) =>
        report.findings.filter((f) => f.name === name).map((f) => `${f.kind} ${f.resource}`);
      expect(of(slotAppName(slot.name))).toEqual([]);
      expect(
        of(slotFrontName(slot.name)).filter((f) => f.startsWith("orphan") || f.startsWith("missing")),
      ).toEqual([]);
      expect(of("slot-gone-app")).toEqual(["orphan slot container"]);
      expect(of(`slot-${slot.name}-old`)).toEqual(["foreign slot container"]);
      expect(report.notes).toContain(
        `slot ${slot.name}: ${slotAppName(slot.name)} runs e2e-app:v2 (deployed by berth-slot)`,
      );
      // Another stack's judgement: the same application is foreign there.
      const other = await judgeSlots(e, "staging", { ...declared, host: HOST });
      expect(other.foreign.map((f) => f.name)).toContain(slotAppName(slot.name));
    } finally {
      e.close();
      docker("rm", "-f", `slot-${slot.name}-old`, "slot-gone-app");
    }
    // The slot goes on working after the judgement.
    expect(deploy("e2e-app:v1").status).toBe(0);
    expect(await answer()).toBe("200 v1");
  }, 180_000);
});
