/**
 * A network holder per build (seed 004), on a real dockerd on btrfs.
 *
 * The REAL program for `testing-ci-1` (under Pulumi's mocks) is applied to a private engine with
 * testkit/e2e/harness.ts: the minimal set (redis, mongodb) published on docker0's gateway, dnsmasq and
 * the production-like set on `ci-services`, and the long-lived holder `app-holder`, the template
 * builds' holders are copied from. Then a static agent container (the agent stand-in, which carries
 * the Docker CLI and berth-holder) with the engine's socket mounted, as `jenkins.dockerSocket: true`
 * gives it, plays the jobs: `berth-holder start <build id>`, containers with
 * `--network container:<holder>`, `stop`, `gc`.
 *
 * Substituted, and printed: the engine's default bridge gateway (e2e-env.sh's docker0) stands in for
 * 172.17.0.1, the minimal set's ports on it are free ports (the harness's hostIp), and the holders'
 * forwarding list says so (test/e2e/support/holders.ts); registry TLS and agent host keys are real
 * ones instead of the mock's.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { HOLDER_LABEL } from "../../components/services.ts";
import { SERVICE_CATALOG } from "../../config/images.ts";
import { loadStack } from "../../config/load.ts";
import type { BerthConfig } from "../../config/types.ts";
import { runConfig } from "../../plan/run.ts";
import { agentHostKeyPaths } from "../../renderers/index.ts";
import { applyHostToEngine, type AppliedHost } from "../../testkit/e2e/harness.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  E2E_CACHE,
  REPO_ROOT,
  run,
  runOk,
  STANDINS_BUILD,
  startEngine,
  stopEngine,
  type Engine,
  type RunResult,
  bridgeGateway,
} from "../../testkit/e2e/support/engine.ts";
import { at } from "../../lib/json.ts";
import { holderTemplates, retargetHolders, viaPublishedPort } from "./support/holders.ts";
import { startPidsLimitService, type PidsLimitService } from "./support/pids-limit.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";
import { exchange } from "./support/wire.ts";

const HOST = "testing-ci-1";
const NGINX_CERT = "/etc/nginx/berth/registry.crt";
const NGINX_KEY = "/etc/nginx/berth/registry.key";

const tools = requireE2eTools("network holders per build", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]);

/** Runs a command without blocking the event loop (two builds at once). */
function runAsync(cmd: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolvePromise({ status, stdout, stderr });
    });
  });
}

describe.skipIf(tools.skip)("a network holder per build (berth-holder) on a real Docker engine", () => {
  let engine: Engine | undefined;
  let applied: AppliedHost;
  let config: BerthConfig;
  let scratch = "";
  let pids: PidsLimitService | undefined;
  const timings: string[] = [];
  const docker = (...args: string[]) => run("docker", ["-H", engine?.host ?? "", ...args]);
  const dockerOk = (...args: string[]) => runOk("docker", ["-H", engine?.host ?? "", ...args]);
  const agentImage = () => standinFor(config.jenkins.image);
  const redisImage = () => standinFor(SERVICE_CATALOG.redis.image);
  const mongoImage = () => standinFor(SERVICE_CATALOG.mongodb.image);
  /** A job's command in an agent container, as user jenkins (the socket's group added). */
  const job = (agent: string, script: string, env: string[] = []) =>
    docker("exec", "-u", "jenkins", ...env.flatMap((e) => ["-e", e]), agent, "bash", "-c", script);
  const jobAsync = (agent: string, script: string) =>
    runAsync("docker", ["-H", engine?.host ?? "", "exec", "-u", "jenkins", agent, "bash", "-c", script]);
  /** A throwaway container in a holder's namespace, started by the job through the agent's docker CLI. */
  const inHolder = (holder: string, image: string, entrypoint: string, ...args: string[]) =>
    job(
      "e2e-agent",
      [
        "docker",
        "run",
        "--rm",
        "--network",
        `container:${holder}`,
        "--entrypoint",
        entrypoint,
        image,
        ...args,
      ]
        .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
        .join(" "),
    );
  const exists = (name: string) => docker("container", "inspect", name).status === 0;
  const timed = (what: string, f: () => RunResult): RunResult => {
    const t = Date.now();
    const r = f();
    timings.push(`${what}: ${String(Date.now() - t)} ms`);
    return r;
  };

  /** A static agent container as `jenkins.dockerSocket: true` makes it: the engine's socket mounted. */
  const startAgent = (name: string) => {
    const gid = statSync(engine?.socket ?? "").gid;
    dockerOk(
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "ci-services",
      "--dns",
      config.services.dnsAddress,
      ...config.dns.searchDomains.flatMap((d) => ["--dns-search", d]),
      "-v",
      `${engine?.socket ?? ""}:/var/run/docker.sock`,
      "--group-add",
      String(gid),
      "--entrypoint",
      "sleep",
      agentImage(),
      "infinity",
    );
  };

  beforeAll(async () => {
    const t0 = Date.now();
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-holder-"));
    config = loadStack(REPO_ROOT, "testing");
    const stack = await runConfig(config);
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
        [NGINX_CERT]: readFileSync(tls.serverCertPath, "utf8"),
        [NGINX_KEY]: readFileSync(tls.serverKeyPath, "utf8"),
      },
    };
    expect(Object.keys(agentHostKeyPaths())).toContain("ed25519");
    for (let n = 1; n <= config.jenkins.agentsPerHost; n++) {
      const agent = `jenkins-agent-${String(n)}`;
      substituteUploads[agent] = agentHostKeyUploads(scratch, agent);
    }

    let t = Date.now();
    engine = startEngine();
    timings.push(`engine up: ${String(Date.now() - t)} ms`);
    t = Date.now();
    // build.sh directly rather than buildStandins: its log has each image's build time.
    const built = run("bash", [STANDINS_BUILD, engine.socket, E2E_CACHE], { timeoutMs: 45 * 60_000 });
    if (built.status !== 0) throw new Error(`images/standins/build.sh failed:\n${built.stderr}`);
    timings.push(
      `stand-ins ready: ${String(Date.now() - t)} ms (${built.stderr.trim().split("\n").join("; ")})`,
    );
    // The engine's docker0 (e2e-env.sh's default bridge) plays 172.17.0.1.
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
    startAgent("e2e-agent");
    // The host's berth-pids-limit (from its Ignition) gives the template its pids limit.
    pids = startPidsLimitService(config, HOST, engine.host, scratch);
    timings.push(`berth-pids-limit sweep: ${String(await pids.swept())} ms`);
    console.log(
      `e2e: setup ${String(Date.now() - t0)} ms; ${timings.join("; ")}\n` +
        `e2e: mappings:\n  ${applied.plan.mappings.join("\n  ")}`,
    );
  }, 45 * 60_000);

  afterAll(async () => {
    console.log(`e2e: holder timings:\n  ${timings.join("\n  ")}`);
    await pids?.stop();
    try {
      if (engine) {
        const stopped = stopEngine(engine.workdir);
        if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
      }
    } finally {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  }, 5 * 60_000);

  it("the agent image carries the Docker CLI, a JDK, git, Mercurial, jq and berth-holder", () => {
    const r = job(
      "e2e-agent",
      "docker version --format '{{.Client.Version}} {{.Server.Version}}' && javac -version 2>&1 && " +
        "git --version && hg --version -q && jq --version && command -v berth-holder",
    );
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^20\.10\.\d+\S* \d+\.\d+/);
    expect(lines[1]).toMatch(/^javac 17\./);
    expect(lines[2]).toMatch(/^git version/);
    expect(lines[3]).toMatch(/Mercurial/);
    expect(lines[4]).toMatch(/^jq-/);
    expect(lines[5]).toBe("/usr/local/bin/berth-holder");
    // The script in the stand-in is the one the real image ships.
    expect(dockerOk("exec", "e2e-agent", "cat", "/usr/local/bin/berth-holder")).toBe(
      readFileSync(join(REPO_ROOT, "images/jenkins-agent/berth-holder"), "utf8"),
    );
  });

  it("the long-lived holder forwards the minimal set and is the template", async () => {
    expect(holderTemplates(applied)).toEqual(config.services.networkHolders);
    const info = await applied.api.inspect("app-holder");
    expect(at(info, "Config", "Labels", HOLDER_LABEL)).toBe("template");
    expect(at(info, "State", "Health", "Status")).toBe("healthy");
    const pong = docker("exec", "app-holder", "sh", "-c", "printf 'PING\\r\\n' | nc -w 3 127.0.0.1 6379");
    expect(pong.stdout, pong.stderr).toBe("+PONG\r\n");
  });

  it("start: a job creates its build's holder; a container in its namespace reaches redis and mongodb on localhost", async () => {
    const r = timed("berth-holder start build-1", () => job("e2e-agent", "berth-holder start build-1"));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("berth-holder-build-1\n");
    console.log(`e2e: ${r.stderr.trim()}`);
    const info = await applied.api.inspect("berth-holder-build-1");
    expect(at(info, "Config", "Labels", HOLDER_LABEL)).toBe("build");
    expect(at(info, "Config", "Labels", `${HOLDER_LABEL}.build-id`)).toBe("build-1");
    expect(at(info, "Config", "Labels", `${HOLDER_LABEL}.created`)).toMatch(/^\d{10}$/);
    const agentId = String(at(await applied.api.inspect("e2e-agent"), "Id"));
    expect(at(info, "Config", "Labels", `${HOLDER_LABEL}.owner`)).toBe(agentId);
    expect(Object.keys((at(info, "NetworkSettings", "Networks") ?? {}) as object).sort()).toEqual([
      "bridge",
      "ci-services",
    ]);
    const template = await applied.api.inspect("app-holder");
    expect(at(info, "Image")).toBe(at(template, "Image"));
    // The template's limits (the program's holder limits), copied: memory, memory+swap, CPUs, and
    // pids (berth-pids-limit gave the template its label's value; the copy keeps it from creation).
    expect(at(template, "HostConfig", "PidsLimit")).toBe(config.limits.containers.holder.pids);
    for (const k of ["Memory", "MemorySwap", "NanoCpus", "PidsLimit"]) {
      expect(at(template, "HostConfig", k), k).toBeGreaterThan(0);
      expect(at(info, "HostConfig", k), k).toBe(at(template, "HostConfig", k));
    }

    // It is the host's minimal redis: a key set through the published port is read back on localhost.
    const port = applied.port("redis", SERVICE_CATALOG.redis.port, DOCKER_BRIDGE_GATEWAY);
    const hostIp = applied.plan.ports.find((p) => p.hostPort === port)?.hostIp ?? "";
    const set = await exchange(
      port,
      Buffer.from("SET berth-holder-e2e from-the-host\r\n"),
      (b) => b.includes("\r\n"),
      hostIp,
    );
    expect(set.toString()).toBe("+OK\r\n");
    for (const host of ["localhost", "127.0.0.1"]) {
      const pong = inHolder("berth-holder-build-1", redisImage(), "redis-cli", "-h", host, "ping");
      expect(pong.stdout.trim(), pong.stderr).toBe("PONG");
    }
    const get = inHolder("berth-holder-build-1", redisImage(), "redis-cli", "get", "berth-holder-e2e");
    expect(get.stdout.trim(), get.stderr).toBe("from-the-host");
    const mongo = inHolder(
      "berth-holder-build-1",
      mongoImage(),
      "mongosh",
      "--quiet",
      "--eval",
      "db.adminCommand('ping').ok",
    );
    expect(mongo.stdout.trim(), mongo.stderr).toBe("1");
  }, 180_000);

  it("names: a container in the holder's namespace has the holder's resolver and resolves production-like short names", () => {
    const holderConf = dockerOk("exec", "berth-holder-build-1", "cat", "/etc/resolv.conf");
    const joined = inHolder("berth-holder-build-1", redisImage(), "cat", "/etc/resolv.conf");
    expect(joined.stdout, joined.stderr).toBe(holderConf);
    expect(holderConf).toMatch(
      new RegExp(`^search ${config.dns.searchDomains.join(" ").replace(/\./g, "\\.")}$`, "m"),
    );
    console.log(`e2e: resolv.conf shared by --network container:berth-holder-build-1:\n${holderConf}`);
    for (const svc of config.services.productionLike) {
      const r = inHolder("berth-holder-build-1", redisImage(), "getent", "hosts", svc.name);
      expect(r.stdout.split(/\s+/)[0], `${svc.name}: ${r.stderr}`).toBe(svc.address);
    }
    const redis = config.services.productionLike.find((s) => s.kind === "redis");
    const pong = inHolder("berth-holder-build-1", redisImage(), "redis-cli", "-h", redis?.name ?? "", "ping");
    expect(pong.stdout.trim(), pong.stderr).toBe("PONG");
  }, 120_000);

  it("two builds at once get two holders, each its own localhost; the same build id is refused twice", async () => {
    const t = Date.now();
    const [a, b] = await Promise.all([
      jobAsync("e2e-agent", "berth-holder start build-2"),
      jobAsync("e2e-agent", "berth-holder start 'feature/Build #3'"),
    ]);
    timings.push(`two holders started at once: ${String(Date.now() - t)} ms`);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(a.stdout.trim()).toBe("berth-holder-build-2");
    expect(b.stdout.trim()).toMatch(/^berth-holder-feature-build--3-[0-9a-f]{12}$/);
    const holder3 = b.stdout.trim();
    // An app listening on localhost:7777 in build-2's namespace is not on build-1's localhost.
    const app = job(
      "e2e-agent",
      `docker run -d --name e2e-app-2 --network container:berth-holder-build-2 --entrypoint redis-server ${redisImage()} --port 7777`,
    );
    expect(app.status, app.stderr).toBe(0);
    try {
      let reply = "";
      for (let i = 0; i < 40 && reply !== "PONG"; i++)
        reply = inHolder(
          "berth-holder-build-2",
          redisImage(),
          "redis-cli",
          "-p",
          "7777",
          "ping",
        ).stdout.trim();
      expect(reply).toBe("PONG");
      for (const other of ["berth-holder-build-1", holder3]) {
        const r = inHolder(other, redisImage(), "redis-cli", "-p", "7777", "ping");
        expect(r.stdout + r.stderr).toMatch(/Connection refused/);
      }
    } finally {
      docker("rm", "-f", "e2e-app-2");
    }
    const again = job("e2e-agent", "berth-holder start build-2");
    expect(again.status).not.toBe(0);
    expect(again.stdout).toBe("");

    for (const id of ["build-2", "feature/Build #3"]) {
      const r = timed(`berth-holder stop ${id}`, () => job("e2e-agent", `berth-holder stop '${id}'`));
      expect(r.status, r.stderr).toBe(0);
    }
    expect(exists("berth-holder-build-2")).toBe(false);
    expect(exists(holder3)).toBe(false);
    expect(exists("berth-holder-build-1")).toBe(true);
    // Stopping again is not an error (a trap and an explicit stop both run).
    expect(job("e2e-agent", "berth-holder stop build-2").status).toBe(0);
  }, 240_000);

  it("gc removes the holder of a build whose agent died, keeps live builds', and removes holders past the maximum age", () => {
    startAgent("e2e-agent-doomed");
    const r = job("e2e-agent-doomed", "berth-holder start build-dead");
    expect(r.status, r.stderr).toBe(0);
    dockerOk("rm", "-f", "e2e-agent-doomed");
    expect(exists("berth-holder-build-dead")).toBe(true);

    const gc = timed("berth-holder gc (one removed)", () => job("e2e-agent", "berth-holder gc"));
    expect(gc.status, gc.stderr).toBe(0);
    expect(gc.stderr).toContain("removed berth-holder-build-dead (its agent container is gone)");
    expect(exists("berth-holder-build-dead")).toBe(false);
    expect(exists("berth-holder-build-1")).toBe(true);
    expect(exists("app-holder")).toBe(true);

    runOk("sleep", ["1.2"]);
    const old = job("e2e-agent", "berth-holder gc", ["BERTH_HOLDER_MAX_AGE=0"]);
    expect(old.status, old.stderr).toBe(0);
    expect(old.stderr).toContain("removed berth-holder-build-1 (older than 0s)");
    expect(exists("berth-holder-build-1")).toBe(false);
    expect(exists("app-holder")).toBe(true);
    const left = dockerOk("ps", "-a", "--filter", `label=${HOLDER_LABEL}=build`, "--format", "{{.Names}}");
    expect(left).toBe("");
  }, 180_000);
});
