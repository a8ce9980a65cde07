/**
 * The service layer on a real Docker engine (btrfs, or overlay2 in the suite's `overlay2` project),
 * not mocked: the REAL Berth program for the `testing` stack runs under Pulumi's mocks, and
 * testkit/e2e/harness.ts creates exactly the networks, volumes and containers it registered for the
 * registry host `testing-ci-1` on a private dockerd, with the stand-in images. Then, reaching
 * containers only through ports published on 127.0.0.1 or
 * from job containers on the host's own `ci-services` network:
 *
 * - registry: anonymous push refused, push/pull with the program's credentials over TLS, wrong
 *   password refused; the registry container replaced at a new address keeps the image and nginx,
 *   never restarted, reaches it at once (every pull and push succeeds); nginx turns unhealthy while
 *   the registry behind it is stopped and healthy again when it is back; the host's
 *   berth-registry-gc, from the host's Ignition, run against the real containers (docker exec into
 *   the registry and nginx): retention, garbage collection, pushes refused only during its window;
 * - Jenkins agents: only the configured key logs in (as `jenkins`, git works), the host key is the
 *   same after the container is replaced;
 * - backend services: production-like names resolve through dnsmasq and answer, the minimal set
 *   answers on its published ports, the network-holder pattern shares one localhost;
 * - limits: every container's memory, CPU and pids limits (the pids limits applied by the host's
 *   berth-pids-limit from its Ignition; a job's own container gets the host default);
 * - everything is healthy, and comes back with its data after a restart of dockerd.
 *
 * What the program gives that cannot work here is substituted visibly (the mock's TLS material and
 * SSH host keys are not real keys: real ones are generated and uploaded in their place) and the
 * harness prints every mapping it made.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { exchange, mongoPing } from "./support/wire.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { DEFAULT_IMAGES, SERVICE_CATALOG } from "../../config/images.ts";
import { loadStack } from "../../config/load.ts";
import type { CapturedResource } from "../../plan/mocks.ts";
import { plain, runConfig, type StackRun } from "../../plan/run.ts";
import { agentHostKeyPaths } from "../../renderers/index.ts";
import { REGISTRY_GC_CONF_PATH, REGISTRY_GC_SCRIPT } from "../../renderers/registry-gc.ts";
import { PIDS_LIMIT_LABEL } from "../../renderers/pids-limit.ts";
import { startPidsLimitService } from "./support/pids-limit.ts";
import { buildHostIgnition } from "../../ignition/host.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { fileText } from "../ignition/fixtures.ts";
import {
  TYPES,
  applyHostToEngine,
  generatedRegistryPasswords,
  type AppliedHost,
} from "../../testkit/e2e/harness.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  REPO_ROOT,
  buildStandins,
  restartEngine,
  run,
  runOk,
  startEngine,
  stopEngine,
  type Engine,
  bridgeGateway,
} from "../../testkit/e2e/support/engine.ts";
import { at } from "../../lib/json.ts";
import { retargetHolders, viaPublishedPort } from "./support/holders.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";

const HOST = "testing-ci-1";
const NGINX_CERT = "/etc/nginx/berth/registry.crt";
const NGINX_KEY = "/etc/nginx/berth/registry.key";

const tools = requireE2eTools("end-to-end services", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "skopeo", debianPackage: "skopeo" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
  { tool: "ssh-keyscan", debianPackage: "openssh-client" },
]);

describe.skipIf(tools.skip)(`the service layer of ${HOST} on a real Docker engine`, () => {
  let engine: Engine | undefined;
  let applied: AppliedHost;
  let stack: StackRun;
  let scratch = "";
  const passwords: Record<string, string> = {};
  const keys = {
    client: "",
    other: "",
    hostPub: {} as Record<string, string>,
  };
  const docker = (...args: string[]) => runOk("docker", ["-H", engine?.host ?? "", ...args]);
  const rawDocker = (...args: string[]) => run("docker", ["-H", engine?.host ?? "", ...args]);
  let ciServices = { network: "", dns: "", searchDomain: "", searchDomains: [] as string[] };
  /** A throwaway job container on ci-services, as an agent's job would run. */
  const job = (image: string, ...cmd: string[]) =>
    rawDocker(
      "run",
      "--rm",
      "--network",
      ciServices.network,
      "--dns",
      ciServices.dns,
      ...ciServices.searchDomains.flatMap((d) => ["--dns-search", d]),
      "--entrypoint",
      cmd[0] ?? "sh",
      image,
      ...cmd.slice(1),
    );
  const redisImage = () => standinFor(SERVICE_CATALOG.redis.image);
  const holderImage = () => standinFor(DEFAULT_IMAGES.holder);
  const registryPort = () => applied.port("registry-nginx", 443);
  const skopeo = (...args: string[]) =>
    run("skopeo", ["--insecure-policy", ...args], {
      timeoutMs: 120_000,
      env: { REGISTRY_AUTH_FILE: join(scratch, "no-auth.json") },
    });
  const certDir = () => join(scratch, "certs");
  const image = (tag: string) => `docker://127.0.0.1:${String(registryPort())}/berth/test:${tag}`;
  const gcImage = (tag: string) => `docker://127.0.0.1:${String(registryPort())}/berth/gc:${tag}`;
  /** `user:password` with the program's password for a registry user. */
  const creds = (user: string) => `${user}:${passwords[user] ?? ""}`;
  /** skopeo inspect of berth/test:1 through nginx, trusting the test CA, as `userPassword`. */
  const inspectAs = (userPassword: string) =>
    skopeo("inspect", "--creds", userPassword, "--cert-dir", certDir(), image("1"));

  beforeAll(async () => {
    const t0 = Date.now();
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-svc-"));
    // --- keys and certificates the mock cannot give ------------------------------------------
    const k = (name: string, ...args: string[]) => {
      runOk("ssh-keygen", ["-q", "-N", "", "-C", `e2e-${name}`, "-f", join(scratch, name), ...args]);
      return join(scratch, name);
    };
    keys.client = k("client", "-t", "ed25519");
    keys.other = k("other", "-t", "ed25519");

    const config = loadStack(REPO_ROOT, "testing");
    config.jenkins.agentPublicKey = readFileSync(`${keys.client}.pub`, "utf8").trim();
    stack = await runConfig(config);
    const privateIp = config.hosts.addresses[config.hosts.names.indexOf(HOST)] as string;
    ciServices = {
      network: "ci-services",
      dns: config.services.dnsAddress,
      // The first (preferred) domain; every check below also holds under the others.
      searchDomain: config.dns.searchDomains[0] ?? "",
      searchDomains: config.dns.searchDomains,
    };

    // The registry users' passwords: exactly the RandomPassword results the program used.
    Object.assign(passwords, generatedRegistryPasswords(stack.resources, HOST, config.registry.users));

    // Real TLS for nginx instead of the mock's PEM-shaped placeholders.
    const certs = certDir();
    runOk("mkdir", ["-p", certs]);
    issueRegistryTls({
      workDir: scratch,
      caCertPath: join(certs, "ca.crt"),
      caName: "berth e2e registry CA",
      hostname: config.registry.hostname,
      privateIp,
    });

    // The substitutions, explicit: each replaced upload must be one the program makes.
    const containerInputs = (name: string): CapturedResource => {
      const c = stack.resources.find((r) => r.type === TYPES.container && r.inputs.name === name);
      if (!c) throw new Error(`the program creates no container ${name}`);
      return c;
    };
    const uploadPaths = (name: string) =>
      (containerInputs(name).inputs.uploads as { file: string }[]).map((u) => u.file);
    expect(uploadPaths("registry-nginx")).toEqual(expect.arrayContaining([NGINX_CERT, NGINX_KEY]));
    const nginxKey = (
      containerInputs("registry-nginx").inputs.uploads as { file: string; content: unknown }[]
    ).find((u) => u.file === NGINX_KEY);
    expect(String(plain(nginxKey?.content))).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const substituteUploads: Record<string, Record<string, string>> = {
      "registry-nginx": {
        [NGINX_CERT]: readFileSync(join(scratch, "server.crt"), "utf8"),
        [NGINX_KEY]: readFileSync(join(scratch, "server.key"), "utf8"),
      },
    };
    // The agents' host keys from the mock are not keys either: real ones, per agent.
    const hk = agentHostKeyPaths();
    for (let n = 1; n <= config.jenkins.agentsPerHost; n++) {
      const agent = `jenkins-agent-${String(n)}`;
      expect(uploadPaths(agent)).toEqual(
        expect.arrayContaining([hk.ed25519, `${hk.ed25519}.pub`, hk.rsa, `${hk.rsa}.pub`]),
      );
      const uploads = agentHostKeyUploads(scratch, agent);
      keys.hostPub[agent] = (uploads[`${hk.ed25519}.pub`] ?? "").trim();
      substituteUploads[agent] = uploads;
    }

    // --- engine, images, the host ------------------------------------------------------------
    let t = Date.now();
    engine = startEngine();
    console.log(`e2e: engine up in ${String(Date.now() - t)} ms at ${engine.host}`);
    t = Date.now();
    buildStandins(engine);
    console.log(`e2e: stand-ins ready in ${String(Date.now() - t)} ms`);
    t = Date.now();
    // The engine's docker0 (e2e-env.sh's default bridge) plays 172.17.0.1: the minimal set's
    // bindings there are made on its gateway, where the holders' forwards reach them (as on a host,
    // and across a daemon restart); the other bindings stay on 127.0.0.1.
    const gateway = await bridgeGateway(engine);
    applied = await applyHostToEngine(stack, HOST, engine, {
      publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
      gatewayHostIp: gateway,
      substituteUploads,
      healthInterval: "1s",
    });
    await retargetHolders(applied, viaPublishedPort);
    console.log(
      `e2e: ${HOST} applied in ${String(Date.now() - t)} ms (${String(applied.plan.containers.length)} containers, ` +
        `setup total ${String(Date.now() - t0)} ms); harness mappings:\n  ${applied.plan.mappings.join("\n  ")}`,
    );
  }, 45 * 60_000);

  afterAll(() => {
    try {
      if (engine) {
        const stopped = stopEngine(engine.workdir);
        if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
      }
    } finally {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  }, 5 * 60_000);

  it("creates every container of the host and they all report healthy", async () => {
    const status = await applied.waitAllHealthy(120_000);
    console.log(`e2e: health: ${JSON.stringify(status)}`);
    expect(Object.keys(status).sort()).toEqual(applied.plan.containers.map((c) => c.name).sort());
    for (const c of applied.plan.containers) {
      const info = await applied.api.inspect(c.name);
      expect(at(info, "HostConfig", "RestartPolicy", "Name"), c.name).toBe("unless-stopped");
      expect(at(info, "HostConfig", "LogConfig"), c.name).toEqual({
        Type: "json-file",
        Config: { "max-file": "5", "max-size": "20m" },
      });
    }
    // Exactly the networks the program asked for: the registry is only on the internal network.
    const nets = async (name: string) =>
      Object.keys(
        (at(await applied.api.inspect(name), "NetworkSettings", "Networks") ?? {}) as object,
      ).sort();
    expect(await nets("registry")).toEqual(["berth-registry"]);
    expect(await nets("registry-nginx")).toEqual(["berth-registry", "bridge"]);
    expect(await nets("jenkins-agent-1")).toEqual(["bridge", "ci-services"]);
    expect(await nets("redis")).toEqual(["bridge"]);
  }, 180_000);

  // --- resource limits (config/limits.ts) -----------------------------------------------------------

  it("limits: every container has the program's memory (no swap beyond it), CPU and pids limits", async () => {
    const l = stack.config.limits.containers;
    // The host's berth-pids-limit, from testing-ci-1's Ignition, as its unit runs it: its sweep
    // applies each container's org.berth.pids-limit label (the program's containers are all up).
    const pidsService = startPidsLimitService(stack.config, HOST, engine?.host ?? "", scratch);
    const defaultPids = pidsService.defaultPids;
    expect(defaultPids).toBe(stack.config.limits.defaultPids);
    try {
      const sweptMs = await pidsService.swept();
      console.log(`e2e: berth-pids-limit swept in ${String(sweptMs)} ms:\n${pidsService.log()}`);
      // A job's own container (no label) gets the host default.
      const jobRun = rawDocker(
        "run",
        "-d",
        "--name",
        "e2e-pids-job",
        "--entrypoint",
        "sleep",
        holderImage(),
        "600",
      );
      expect(jobRun.status, jobRun.stderr).toBe(0);
      const t1 = Date.now();
      let jobPids: unknown;
      while (Date.now() - t1 < 10_000) {
        jobPids = (at(await applied.api.inspect("e2e-pids-job"), "HostConfig") as Record<string, unknown>)
          .PidsLimit;
        if (jobPids === defaultPids) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(`e2e: a job's container got PidsLimit ${String(jobPids)} in ${String(Date.now() - t1)} ms`);
      expect(jobPids).toBe(defaultPids);
    } finally {
      rawDocker("rm", "-f", "e2e-pids-job");
      await pidsService.stop();
    }
    const kindOf: Record<string, keyof typeof l> = {
      "jenkins-agent-1": "agent",
      "jenkins-agent-2": "agent",
      "app-holder": "holder",
      dnsmasq: "dnsmasq",
      redis: "redis",
      mongodb: "mongodb",
      "mongodb-cluster-a-node-1": "mongodb",
      "redis-cache-1": "redis",
      registry: "registry",
      "registry-nginx": "nginx",
      "node-exporter": "nodeExporter",
    };
    const seen: string[] = [];
    for (const c of applied.plan.containers) {
      const r = stack.resources.find((x) => x.urn === c.urn);
      const memory = Number(plain(r?.inputs.memory));
      const cpus = Number(plain(r?.inputs.cpus));
      const hc = at(await applied.api.inspect(c.name), "HostConfig") as Record<string, unknown>;
      const line = `${c.name}: Memory ${String(hc.Memory)} MemorySwap ${String(hc.MemorySwap)} NanoCpus ${String(hc.NanoCpus)} PidsLimit ${String(hc.PidsLimit)}`;
      console.log(`e2e: limits: ${line}`);
      expect(memory, `${c.name} has no memory limit in the program`).toBeGreaterThanOrEqual(6);
      expect(hc.Memory, line).toBe(memory * 1024 * 1024);
      expect(hc.MemorySwap, line).toBe(memory * 1024 * 1024);
      // Capped at this machine's CPUs by the harness (a recorded mapping), as dockerd requires.
      expect(hc.NanoCpus, line).toBe(Math.round(Math.min(cpus, availableParallelism()) * 1e9));
      // The program's label, applied by berth-pids-limit (the provider has no pidsLimit).
      const labels = (plain(r?.inputs.labels) as { label: string; value: string }[] | undefined) ?? [];
      const pids = Number(labels.find((x) => x.label === PIDS_LIMIT_LABEL)?.value);
      expect(hc.PidsLimit, line).toBe(pids);
      const kind = kindOf[c.name];
      expect(kind, `${c.name}: a container this test does not know`).toBeDefined();
      if (kind) expect({ memoryMiB: memory, cpus, pids }, c.name).toEqual(l[kind]);
      seen.push(c.name);
    }
    expect(seen.sort()).toEqual(Object.keys(kindOf).sort());
  }, 120_000);

  it("limits: the kernel enforces them: a process over app-holder's memory limit is OOM-killed", async () => {
    const limit = stack.config.limits.containers.holder.memoryMiB;
    const over = Math.max(64, limit * 2);
    const t = Date.now();
    // busybox dd allocates and fills one bs-sized buffer: over the limit (swap is forbidden too).
    const hog = rawDocker(
      "exec",
      "app-holder",
      "dd",
      "if=/dev/zero",
      "of=/dev/null",
      `bs=${over}M`,
      "count=1",
    );
    const took = Date.now() - t;
    console.log(
      `e2e: limits: dd of ${over} MiB in app-holder (limit ${limit} MiB): exit ${String(hog.status)} in ${took} ms`,
    );
    expect(hog.status, hog.stderr).toBe(137); // SIGKILL from the cgroup's OOM killer
    expect(took).toBeLessThan(60_000);
    // Under the limit: a quarter of what the container's cgroup has left at that moment, read inside
    // the same exec. A fixed share of the 32 MiB limit (a quarter, then an eighth) was at times
    // OOM-killed (runs of 2026-11-30 and 2026-12-01, the second on overlay2): the cgroup also holds
    // runc's init for `docker exec` (a Go program of several MiB), the holder's own processes and,
    // on cgroup v1, the page cache of the files they read.
    const under = rawDocker(
      "exec",
      "app-holder",
      "sh",
      "-c",
      [
        "used=$(cat /sys/fs/cgroup/memory.current 2>/dev/null || cat /sys/fs/cgroup/memory/memory.usage_in_bytes)",
        "mib=$(( ($1 * 1048576 - used) / 4 / 1048576 ))",
        'echo "used=$used mib=$mib"',
        '[ "$mib" -ge 1 ] || exit 3',
        'dd if=/dev/zero of=/dev/null bs="$mib"M count=1',
      ].join("; "),
      "sh",
      String(limit),
    );
    console.log(`e2e: limits: under the limit: ${under.stdout.trim()}, exit ${String(under.status)}`);
    expect(under.status, `${under.stdout}${under.stderr}`).toBe(0);
    // Only the process over the limit died: the holder runs on, healthy.
    const info = await applied.api.inspect("app-holder");
    expect(at(info, "State", "Running")).toBe(true);
    // dockerd marks a container OOMKilled on any OOM event of its cgroup (informational here).
    console.log(`e2e: limits: app-holder State.OOMKilled ${String(at(info, "State", "OOMKilled"))}`);
  }, 120_000);

  // --- registry -----------------------------------------------------------------------------------

  it("registry: refuses an anonymous push, accepts push and pull with the program's credentials over TLS", () => {
    const archive = join(scratch, "holder.tar");
    docker("save", "-o", archive, holderImage());
    const anon = skopeo(
      "copy",
      "--dest-no-creds",
      "--dest-cert-dir",
      certDir(),
      `docker-archive:${archive}`,
      image("anon"),
    );
    expect(anon.status, anon.stdout).not.toBe(0);
    expect(anon.stderr).toMatch(/unauthorized|authentication required|401/i);

    const digestFile = join(scratch, "pushed.digest");
    const push = skopeo(
      "copy",
      "--dest-creds",
      creds("jenkins"),
      "--dest-cert-dir",
      certDir(),
      "--digestfile",
      digestFile,
      `docker-archive:${archive}`,
      image("1"),
    );
    expect(push.status, push.stderr).toBe(0);
    const pushed = readFileSync(digestFile, "utf8").trim();

    const pull = inspectAs(creds("developer"));
    expect(pull.status, pull.stderr).toBe(0);
    expect(JSON.parse(pull.stdout).Digest).toBe(pushed);
    const copyOut = skopeo(
      "copy",
      "--src-creds",
      creds("developer"),
      "--src-cert-dir",
      certDir(),
      image("1"),
      `dir:${join(scratch, "pulled")}`,
    );
    expect(copyOut.status, copyOut.stderr).toBe(0);
    console.log(
      `e2e: pushed and pulled berth/test:1 ${pushed} through nginx on 127.0.0.1:${String(registryPort())}`,
    );

    const wrong = inspectAs(`${creds("jenkins")}x`);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized|authentication required|401/i);
    const wrongPush = skopeo(
      "copy",
      "--dest-creds",
      "jenkins:not-the-password",
      "--dest-cert-dir",
      certDir(),
      `docker-archive:${archive}`,
      image("2"),
    );
    expect(wrongPush.status).not.toBe(0);
    // TLS is verified against the test CA: without it the certificate is refused.
    const untrusted = skopeo("inspect", "--creds", creds("jenkins"), image("1"));
    expect(untrusted.status).not.toBe(0);
    expect(untrusted.stderr).toMatch(/certificate|x509/i);
  }, 180_000);

  /** The registry's address on berth-registry. */
  const registryIp = async () =>
    String(
      at(await applied.api.inspect("registry"), "NetworkSettings", "Networks", "berth-registry", "IPAddress"),
    );
  /** What would show that nginx was restarted or recreated: its Id, start time and restart count. */
  const nginxIdentity = async () => {
    const info = await applied.api.inspect("registry-nginx");
    return {
      id: String(at(info, "Id")),
      startedAt: String(at(info, "State", "StartedAt")),
      restarts: Number(at(info, "RestartCount")),
    };
  };

  it("registry: replaced at a NEW address, nginx (untouched) reaches it: every pull and push succeeds", async () => {
    const pushed = readFileSync(join(scratch, "pushed.digest"), "utf8").trim();
    const nginxBefore = await nginxIdentity();
    const registryBefore = String(at(await applied.api.inspect("registry"), "Id"));
    const ipBefore = await registryIp();

    // The replacement, in the provider's order (delete, then create), with another container
    // created on berth-registry in between: if the engine hands out the freed address first, that
    // container takes it (the old address is occupied); if it allocates serially, the registry
    // gets a fresh one anyway. Either way the registry must come back at a NEW address; checked.
    const t0 = Date.now();
    await applied.remove("registry");
    const filler = "e2e-old-address-taker";
    docker(
      "run",
      "-d",
      "--name",
      filler,
      "--network",
      "berth-registry",
      "--entrypoint",
      "sleep",
      holderImage(),
      "3600",
    );
    try {
      const fillerIp = String(
        at(await applied.api.inspect(filler), "NetworkSettings", "Networks", "berth-registry", "IPAddress"),
      );
      await applied.create(applied.container("registry"));
      await applied.api.waitHealthy("registry", 60_000);
      const replacedIn = Date.now() - t0;
      const ipAfter = await registryIp();
      console.log(
        `e2e: registry replaced in ${String(replacedIn)} ms; its address on berth-registry ${ipBefore} → ${ipAfter}` +
          ` (old address ${fillerIp === ipBefore ? "now held by" : "unused; another container got"} ${fillerIp})`,
      );
      expect(String(at(await applied.api.inspect("registry"), "Id"))).not.toBe(registryBefore);
      expect(ipAfter, "the test must give the registry a new address").not.toBe(ipBefore);
      expect(ipAfter).not.toBe(fillerIp);

      // Right away, no retry: each pull and push through nginx must succeed the first time.
      const t1 = Date.now();
      for (let i = 0; i < 5; i++) {
        const inspect = inspectAs(creds(i % 2 === 0 ? "jenkins" : "developer"));
        expect(inspect.status, `pull ${String(i + 1)} after the replacement: ${inspect.stderr}`).toBe(0);
        expect(JSON.parse(inspect.stdout).Digest).toBe(pushed);
      }
      const copy = skopeo(
        "copy",
        "--src-creds",
        creds("jenkins"),
        "--src-cert-dir",
        certDir(),
        "--dest-creds",
        creds("jenkins"),
        "--dest-cert-dir",
        certDir(),
        image("1"),
        image("after-replacement"),
      );
      expect(copy.status, `pull and push after the replacement: ${copy.stderr}`).toBe(0);
      console.log(
        `e2e: 5 pulls and a pull+push through nginx after the replacement in ${String(Date.now() - t1)} ms`,
      );
    } finally {
      rawDocker("rm", "-f", filler);
    }
    // nginx was neither restarted nor recreated.
    expect(await nginxIdentity()).toEqual(nginxBefore);
  }, 180_000);

  it("registry-nginx: unhealthy while the registry behind it is stopped, healthy again when it is back", async () => {
    const hc = applied.container("registry-nginx").body.Healthcheck as {
      Interval: number;
      Timeout: number;
      Retries: number;
    };
    // Docker marks a container unhealthy after `Retries` consecutive failures, one per interval,
    // each taking at most the timeout: the bound the health check itself sets, plus a second.
    const boundMs = (hc.Retries * (hc.Interval + hc.Timeout) + hc.Interval) / 1e6 + 1000;
    const health = async () =>
      String(at(await applied.api.inspect("registry-nginx"), "State", "Health", "Status"));
    const waitFor = async (want: string, timeoutMs: number) => {
      const t = Date.now();
      while (Date.now() - t < timeoutMs) {
        if ((await health()) === want) return Date.now() - t;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`registry-nginx is ${await health()}, not ${want}, after ${String(timeoutMs)} ms`);
    };
    await applied.api.waitHealthy("registry-nginx", 60_000);
    const nginxBefore = await nginxIdentity();

    docker("stop", "registry");
    const toUnhealthy = await waitFor("unhealthy", boundMs);
    docker("start", "registry");
    await applied.api.waitHealthy("registry", 60_000);
    const toHealthy = await waitFor("healthy", boundMs);
    console.log(
      `e2e: registry-nginx unhealthy ${String(toUnhealthy)} ms after the registry stopped, healthy again ` +
        `${String(toHealthy)} ms after it was back (bound ${String(boundMs)} ms: health check every ` +
        `${String(hc.Interval / 1e6)} ms, ${String(hc.Retries)} retries)`,
    );
    expect(await nginxIdentity()).toEqual(nginxBefore);
    const inspect = inspectAs(creds("jenkins"));
    expect(inspect.status, inspect.stderr).toBe(0);
  }, 180_000);

  // --- registry upkeep: the host's berth-registry-gc against the real containers -------------------

  it("registry upkeep: the host's berth-registry-gc (docker exec into registry and registry-nginx) keeps the newest tags, frees their blobs' space and refuses pushes only during its window", async () => {
    // The script and its settings exactly as testing-ci-1's Ignition writes them, keep_tags set to 2
    // through the stack setting so that four revisions are enough.
    const config = loadStack(REPO_ROOT, "testing");
    config.registry.upkeep = { ...config.registry.upkeep, keepTags: 2 };
    const ign = buildHostIgnition({
      ...hostIgnitionBase(config, HOST),
      dockerVolumeId: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    });
    const script = join(scratch, REGISTRY_GC_SCRIPT);
    writeFileSync(script, fileText(ign, `/usr/local/bin/${REGISTRY_GC_SCRIPT}`), { mode: 0o755 });
    const conf = join(scratch, "registry-gc.conf");
    writeFileSync(conf, fileText(ign, REGISTRY_GC_CONF_PATH));
    expect(readFileSync(conf, "utf8")).toContain("keep_tags=2\n");

    // Four revisions of berth/gc, each with a layer of its own (1 MiB of random bytes).
    const digests: string[] = [];
    for (let r = 1; r <= 4; r++) {
      const dir = join(scratch, `gc-r${String(r)}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "payload"), randomBytes(1 << 20));
      runOk("tar", ["-C", dir, "-cf", `${dir}.tar`, "payload"]);
      docker("import", `${dir}.tar`, `berth-e2e/gc:r${String(r)}`);
      docker("save", "-o", `${dir}-image.tar`, `berth-e2e/gc:r${String(r)}`);
      const digestFile = `${dir}.digest`;
      const push = skopeo(
        "copy",
        "--dest-creds",
        creds("jenkins"),
        "--dest-cert-dir",
        certDir(),
        "--digestfile",
        digestFile,
        `docker-archive:${dir}-image.tar`,
        gcImage(`r${String(r)}`),
      );
      expect(push.status, push.stderr).toBe(0);
      digests.push(readFileSync(digestFile, "utf8").trim());
      // Retention orders tags by push time (the tag link's mtime): one second apart.
      await new Promise((res) => setTimeout(res, 1100));
    }

    // The run, as the timer's service starts it on the host (only the engine's socket and a short
    // grace differ); a push is tried while its refusal is in place.
    const env = {
      ...process.env,
      DOCKER_HOST: engine?.host ?? "",
      BERTH_REGISTRY_GC_CONF: conf,
      BERTH_REGISTRY_GC_GRACE_SECONDS: "6",
    };
    const t0 = Date.now();
    const gc = spawn("bash", [script], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    gc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    gc.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => gc.on("close", (code) => res(code)));
    const deadline = Date.now() + 30_000;
    while (!out.includes("writes are refused") && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(out, "the script must switch maintenance on").toContain("writes are refused");
    const duringWindow = skopeo(
      "copy",
      "--dest-creds",
      creds("jenkins"),
      "--dest-cert-dir",
      certDir(),
      `docker-archive:${join(scratch, "gc-r1-image.tar")}`,
      gcImage("during-window"),
    );
    const pullDuring = inspectAs(creds("developer"));
    const code = await Promise.race([
      exited,
      new Promise<"timeout">((res) => setTimeout(() => res("timeout"), 120_000)),
    ]);
    if (code === "timeout") gc.kill("SIGKILL");
    console.log(`e2e: berth-registry-gc on the real containers in ${String(Date.now() - t0)} ms:\n${out}`);
    expect(code, out).toBe(0);
    expect(duringWindow.status, "a push during the window is refused").not.toBe(0);
    expect(duringWindow.stderr).toMatch(/maintenance/);
    expect(pullDuring.status, `a pull during the window works: ${pullDuring.stderr}`).toBe(0);

    // r1 and r2 deleted, r3 and r4 kept with their digests; the space went back.
    for (const gone of ["r1", "r2"]) {
      const r = skopeo("inspect", "--creds", creds("jenkins"), "--cert-dir", certDir(), gcImage(gone));
      expect(r.status, `${gone} must be deleted`).not.toBe(0);
      expect(r.stderr).toMatch(/manifest unknown|not found/i);
    }
    for (const [i, kept] of ["r3", "r4"].entries()) {
      const r = skopeo("inspect", "--creds", creds("jenkins"), "--cert-dir", certDir(), gcImage(kept));
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).Digest).toBe(digests[i + 2]);
    }
    expect(out).toMatch(/retention: 2 manifests deleted/);
    const m = /storage: (\d+) MiB before, (\d+) MiB after/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m?.[2])).toBeLessThan(Number(m?.[1]));
    // The refusal is gone: the push refused during the window now succeeds.
    const after = skopeo(
      "copy",
      "--dest-creds",
      creds("jenkins"),
      "--dest-cert-dir",
      certDir(),
      `docker-archive:${join(scratch, "gc-r1-image.tar")}`,
      gcImage("after-window"),
    );
    expect(after.status, after.stderr).toBe(0);
  }, 300_000);

  // --- Jenkins agents -----------------------------------------------------------------------------

  const ssh = (port: number, key: string, extra: string[], cmd: string) =>
    run(
      "ssh",
      [
        "-p",
        String(port),
        "-i",
        key,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=10",
        ...extra,
        "jenkins@127.0.0.1",
        cmd,
      ],
      { timeoutMs: 30_000 },
    );
  const keyscan = (port: number) =>
    runOk("ssh-keyscan", ["-p", String(port), "-t", "ed25519,rsa", "127.0.0.1"])
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"))
      .sort();

  it("agents: the configured key logs in as jenkins and git runs; another key and passwords are refused", () => {
    for (const agent of ["jenkins-agent-1", "jenkins-agent-2"]) {
      const port = applied.port(agent, 22);
      const ok = ssh(port, keys.client, [], "id -un && git --version && echo $AGENT_WORKDIR");
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^jenkins\ngit version \d/);
      const other = ssh(port, keys.other, [], "true");
      expect(other.status).not.toBe(0);
      expect(other.stderr).toMatch(/Permission denied \(publickey\)/);
      const pw = ssh(
        port,
        keys.other,
        ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"],
        "true",
      );
      expect(pw.status).not.toBe(0);
      expect(pw.stderr).toMatch(/Permission denied \(publickey\)/);
      expect(keyscan(port).join("\n")).toContain(keys.hostPub[agent]?.split(" ").slice(0, 2).join(" "));
    }
    // A job on the agent reaches the production-like names (dnsmasq through the agent's resolver).
    const [svc] = stack.config.services.productionLike;
    const names = ssh(
      applied.port("jenkins-agent-1", 22),
      keys.client,
      [],
      `getent hosts ${svc?.name ?? ""} ${svc?.name ?? ""}.${ciServices.searchDomain}`,
    );
    expect(names.stdout, names.stderr).toMatch(
      new RegExp(`^${(svc?.address ?? "").replace(/\./g, "\\.")}\\s`, "m"),
    );
    expect(names.stdout.trim().split("\n")).toHaveLength(2);
  }, 120_000);

  it("agents: the host keys are the same after the agent container is replaced", async () => {
    const port = applied.port("jenkins-agent-1", 22);
    const before = keyscan(port);
    await applied.replace("jenkins-agent-1");
    await applied.api.waitHealthy("jenkins-agent-1", 60_000);
    const after = keyscan(port);
    expect(after).toEqual(before);
    expect(before.length).toBe(2);
    expect(ssh(port, keys.client, [], "true").status).toBe(0);
  }, 120_000);

  // --- backend services ---------------------------------------------------------------------------

  it("services: production-like names resolve through dnsmasq to their addresses and answer", () => {
    const { productionLike } = stack.config.services;
    for (const svc of productionLike) {
      for (const name of [svc.name, `${svc.name}.${ciServices.searchDomain}`]) {
        // Asked of dnsmasq directly, and through the job's own resolver (the search-domain name
        // only dnsmasq knows: Docker's embedded DNS forwards it there).
        const direct = job(holderImage(), "nslookup", name, ciServices.dns);
        expect(direct.status, direct.stdout + direct.stderr).toBe(0);
        expect(direct.stdout).toContain(`Address: ${svc.address}`);
        const viaResolver = job(holderImage(), "nslookup", name);
        expect(viaResolver.stdout, viaResolver.stderr).toContain(svc.address);
      }
    }
    const redis = productionLike.find((s) => s.kind === "redis");
    const mongo = productionLike.find((s) => s.kind === "mongodb");
    if (!redis || !mongo) throw new Error("the testing stack has a production-like redis and mongodb");
    const pong = job(redisImage(), "redis-cli", "-h", `${redis.name}.${ciServices.searchDomain}`, "ping");
    expect(pong.stdout.trim(), pong.stderr).toBe("PONG");
    const ok = job(
      standinFor(SERVICE_CATALOG.mongodb.image),
      "mongosh",
      "--host",
      mongo.name,
      "--quiet",
      "--eval",
      "db.adminCommand('ping').ok",
    );
    expect(ok.stdout.trim(), ok.stderr).toBe("1");
  }, 120_000);

  it("services: the minimal set answers on its published ports (127.0.0.1, and docker0's stand-in)", async () => {
    // Where the harness published each binding: 127.0.0.1, or the engine's bridge gateway for 172.17.0.1.
    const published = (container: string, internal: number, ip: string) => {
      const p = applied.plan.ports.find(
        (x) => x.container === container && x.internal === internal && x.ip === ip,
      );
      if (!p) throw new Error(`${container} does not publish ${String(internal)} on ${ip}`);
      return p;
    };
    for (const ip of ["127.0.0.1", DOCKER_BRIDGE_GATEWAY]) {
      const r = published("redis", 6379, ip);
      const redis = await exchange(r.hostPort, Buffer.from("PING\r\n"), (b) => b.includes("\r\n"), r.hostIp);
      expect(redis.toString()).toBe("+PONG\r\n");
      const m = published("mongodb", 27017, ip);
      const mongo = await exchange(
        m.hostPort,
        mongoPing(),
        (b) => b.length >= 4 && b.length >= b.readInt32LE(0),
        m.hostIp,
      );
      expect(mongo.readInt32LE(12)).toBe(2013);
      expect(mongo.includes(Buffer.from("ok"))).toBe(true);
    }
  }, 60_000);

  it("services: two containers in the network holder's namespace share localhost, and see the services", () => {
    const holder = "app-holder";
    docker(
      "run",
      "-d",
      "--name",
      "e2e-app",
      "--network",
      `container:${holder}`,
      redisImage(),
      "redis-server",
      "--port",
      "7777",
    );
    try {
      let reply = "";
      for (let i = 0; i < 40 && reply !== "PONG"; i++) {
        reply = rawDocker(
          "run",
          "--rm",
          "--network",
          `container:${holder}`,
          redisImage(),
          "redis-cli",
          "-p",
          "7777",
          "ping",
        ).stdout.trim();
      }
      expect(reply).toBe("PONG");
      const svc = stack.config.services.productionLike.find((s) => s.kind === "redis");
      const viaHolder = rawDocker(
        "run",
        "--rm",
        "--network",
        `container:${holder}`,
        redisImage(),
        "redis-cli",
        "-h",
        svc?.name ?? "",
        "ping",
      );
      expect(viaHolder.stdout.trim(), viaHolder.stderr).toBe("PONG");
    } finally {
      rawDocker("rm", "-f", "e2e-app");
    }
  }, 120_000);

  // --- daemon restart -----------------------------------------------------------------------------

  it("after a restart of dockerd every container comes back healthy, with its data", async () => {
    const redis = stack.config.services.productionLike.find((s) => s.kind === "redis")?.name ?? "";
    const set = job(
      redisImage(),
      "sh",
      "-c",
      `redis-cli -h ${redis} set berth-e2e survives && redis-cli -h ${redis} save`,
    );
    expect(set.stdout, set.stderr).toMatch(/OK\s+OK/);
    const minimal = await exchange(
      applied.port("redis", 6379, "127.0.0.1"),
      Buffer.from("SET berth-min kept\r\nSAVE\r\n"),
      (b) => b.toString().split("\r\n").length > 2,
    );
    expect(minimal.toString()).toBe("+OK\r\n+OK\r\n");
    const before = Object.fromEntries(
      await Promise.all(
        applied.plan.containers.map(
          async (c) => [c.name, String(at(await applied.api.inspect(c.name), "State", "StartedAt"))] as const,
        ),
      ),
    );

    const t = Date.now();
    if (!engine) throw new Error("no engine");
    restartEngine(engine);
    console.log(`e2e: dockerd restarted in ${String(Date.now() - t)} ms`);
    const status = await applied.waitAllHealthy(180_000);
    console.log(`e2e: after the restart, in ${String(Date.now() - t)} ms: ${JSON.stringify(status)}`);
    for (const c of applied.plan.containers) {
      const started = String(at(await applied.inspect(c.name), "State", "StartedAt"));
      expect(started, `${c.name} was restarted`).not.toBe(before[c.name]);
    }

    const get = job(redisImage(), "redis-cli", "-h", redis, "get", "berth-e2e");
    expect(get.stdout.trim(), get.stderr).toBe("survives");
    const getMin = await exchange(
      applied.port("redis", 6379, "127.0.0.1"),
      Buffer.from("GET berth-min\r\n"),
      (b) => b.toString().endsWith("\r\n") && b.length > 5,
    );
    expect(getMin.toString()).toBe("$4\r\nkept\r\n");
    let pulled = inspectAs(creds("jenkins"));
    for (let i = 0; i < 20 && pulled.status !== 0; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      pulled = inspectAs(creds("jenkins"));
    }
    expect(pulled.status, pulled.stderr).toBe(0);
    expect(ssh(applied.port("jenkins-agent-2", 22), keys.client, [], "git --version").status).toBe(0);
  }, 300_000);
});
