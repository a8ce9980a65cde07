/**
 * Seed 004's build sequence on a real two-host stack (issue #15 item 5), on btrfs.
 *
 * The REAL program for `staging` (two hosts) runs under Pulumi's mocks, with real ED25519/RSA keys
 * for its tls PrivateKeys (test/e2e/support/ssh-keys.ts): the agents' host keys and the
 * `agentKnownHosts` output are then the program's own and real. Each host is applied
 * (testkit/e2e/harness.ts) to its own private dockerd on btrfs, each dockerd in a network namespace of
 * its own (test/e2e/support/netns.ts): both hosts create the services network 172.30.0.0/24 with
 * the same fixed addresses, and docker0's 172.17.0.1, as separate hosts do, and the two
 * namespaces share a "CI network" (a veth pair carrying the hosts' private addresses). Each dockerd
 * has a mutual-TLS endpoint on :2376 trusting the dockerd CA and its own host's build CA only.
 *
 * Then a build is played the way Jenkins would play it, over SSH as user jenkins:
 *   - every agent on both hosts is reached with `StrictHostKeyChecking=yes` and the program's
 *     `agentKnownHosts` as the only known_hosts file, at the floating address and port it names;
 *   - test/fixtures/sample-app/jenkins-build.sh, on an agent: checkout (a git bundle), `docker build`
 *     of test/fixtures/sample-app tagged with the revision (FROM a stand-in on the engine: no
 *     network), `berth-holder start`, unit tests in a container that reaches redis and MongoDB on
 *     `localhost` through that holder, integration tests in a second one (`--net container:<holder>`),
 *     the app on `ci-services` reaching `mongodb-cluster-a-node-1` by its short name, a push to the
 *     stack's registry through nginx (TLS verified, basic auth), `berth-holder stop`;
 *     Docker is the agent's own (`jenkins.dockerAccess.static: tls`: DOCKER_HOST=tcp://<private
 *     address>:2376 with the host's build credentials);
 *   - two builds at once on one host, and the holders gone afterwards;
 *   - the limits in `docker inspect` of every container of both hosts and of a build's holder;
 *   - host 1's build credentials refused by host 2's dockerd (and the other way round).
 *
 * MongoDB here is Berth's stand-in, a SUBSTITUTE, not MongoDB (images/standins/README.md): it answers
 * ping, hello and buildInfo only. What the app's MongoDB checks prove is name resolution, routing
 * and forwarding to a MongoDB wire-protocol endpoint, not MongoDB behaviour.
 *
 * Substituted, and printed (`e2e:` lines): real TLS for nginx and the dockerd/build certificates
 * (the mock's are placeholders); the controller's SSH key (the stack file's public key has no
 * private half here); services without a stand-in (postgres) and the registry's pull-through cache
 * (no Internet) are left out, as in perbuild.test.ts. Published ports keep the program's address and
 * port (each namespace is empty), except where two bindings would collide.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { spawn } from "node:child_process";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { HOLDER_LABEL } from "../../components/services.ts";
import { SERVICE_CATALOG } from "../../config/images.ts";
import { loadStack } from "../../config/load.ts";
import { tarArchive } from "../../lib/tar.ts";
import type { BerthConfig } from "../../config/types.ts";
import { resolveOutput } from "../../plan/mocks.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";
import { BUILD_TLS_DIR, BUILD_TLS_VOLUME } from "../../renderers/docker-access.ts";
import { PIDS_LIMIT_LABEL } from "../../renderers/pids-limit.ts";
import {
  applyHostToEngine,
  generatedRegistryPasswords,
  type AppliedHost,
  type PublishedPort,
} from "../../testkit/e2e/harness.ts";
import { issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { makeStackDockerTls } from "./support/docker-tls.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  E2E_CACHE,
  E2E_ENV,
  REPO_ROOT,
  runOk,
  STANDINS_BUILD,
  type Engine,
  type RunResult,
} from "../../testkit/e2e/support/engine.ts";
import { at } from "../../lib/json.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";
import { createHostNamespaces, inNetns, startEngineInNetns, type NetnsHost } from "./support/netns.ts";
import { startPidsLimitService, type PidsLimitService } from "./support/pids-limit.ts";
import { realKeyOutputs } from "./support/ssh-keys.ts";

const APP_DIR = resolve(REPO_ROOT, "test/fixtures/sample-app");
const NGINX_CERT = "/etc/nginx/berth/registry.crt";
const NGINX_KEY = "/etc/nginx/berth/registry.key";
const DOCKER_CERTS_D = "/etc/docker/certs.d";
/** docker0 of a host (daemon.json's default bridge), here inside each namespace. */
const BRIDGE_CIDR = `${DOCKER_BRIDGE_GATEWAY}/16`;
/** The MongoDB the app reaches on ci-services, by its short name. */
const MONGO_NAME = "mongodb-cluster-a-node-1";

const tools = requireE2eTools("a build on a two-host stack", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "git", debianPackage: "git" },
  { tool: "nsenter", debianPackage: "util-linux" },
  { tool: "ip", debianPackage: "iproute2" },
]);

interface Host {
  name: string;
  ns: NetnsHost;
  engine?: Engine;
  applied?: AppliedHost;
}

/** Runs a command without blocking the event loop (two builds at once). */
function runAsync(cmd: string, args: string[], input: Buffer, timeoutMs = 1_500_000): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolvePromise({ status, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** This machine's load average (1, 5, 15 minutes), for the figures. */
const load = () =>
  `load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`;

/** berth-holder's own lines (its readiness time, the removal) and the app's from a build's stderr. */
const jobLines = (...stderr: string[]) =>
  stderr
    .flatMap((e) => e.split("\n"))
    .filter((l) => (l.startsWith("berth-holder: ") && !l.includes(" gc: ")) || l.startsWith("sample-app"))
    .join("\n  ");

/** The `KEY value` lines of jenkins-build.sh. */
function facts(stdout: string): { steps: [string, number][]; get: (key: string) => string } {
  const lines = stdout.split("\n").filter((l) => l !== "");
  const steps = lines
    .filter((l) => l.startsWith("STEP "))
    .map((l) => {
      const [, name, ms] = l.split(" ");
      return [name ?? "", Number(ms)] as [string, number];
    });
  const get = (key: string) => {
    const l = lines.find((x) => x.startsWith(`${key} `));
    if (l === undefined) throw new Error(`no ${key} line in:\n${stdout}`);
    return l.slice(key.length + 1);
  };
  return { steps, get };
}

describe.skipIf(tools.skip)(
  "a build on a two-host staging stack (seed 004), each host its own dockerd on btrfs",
  () => {
    let scratch = "";
    let config: BerthConfig;
    let stack: StackRun;
    let knownHostsFile = "";
    let knownHosts = "";
    const controllerKey = () => join(scratch, "controller_ed25519");
    let bundle: Buffer = Buffer.alloc(0);
    let revision = "";
    let registry = "";
    let registryPassword = "";
    let certsEntry = "";
    let certsCreated: string | undefined;
    let removeNamespaces: (() => void) | undefined;
    const pidsServices: PidsLimitService[] = [];
    const hosts: Host[] = [];
    const mappings: string[] = [];
    const figures: string[] = [];
    const generatedKeys: string[] = [];

    const host = (i: number): Host => {
      const h = hosts[i];
      if (!h) throw new Error(`no host ${String(i)}`);
      return h;
    };
    const applied = (i: number): AppliedHost => {
      const a = host(i).applied;
      if (!a) throw new Error(`${host(i).name} not applied`);
      return a;
    };
    /** ssh as the Jenkins controller does: strict host key checking, the program's known_hosts only. */
    const sshArgs = (h: Host, port: number) => [
      "-i",
      controllerKey(),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${knownHostsFile}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "LogLevel=ERROR",
      "-p",
      String(port),
      `jenkins@${h.ns.floatingIp}`,
    ];
    const agentPort = (n: number) => config.jenkins.basePort + n;
    const ssh = (h: Host, n: number, command: string) =>
      inNetns(h.ns.netns, "ssh", [...sshArgs(h, agentPort(n)), command], { timeoutMs: 120_000 });
    /** jenkins-build.sh on agent `n` of `h`, its inputs sent as a tar archive on stdin. */
    const build = (h: Host, n: number, id: string) => {
      const dir = `/home/jenkins/agent/in-${id}`;
      const archive = tarArchive([
        { path: "app.bundle", content: bundle },
        { path: "jenkins-build.sh", content: readFileSync(join(APP_DIR, "jenkins-build.sh")), mode: "0755" },
        { path: "registry-password", content: registryPassword, mode: "0600" },
      ]);
      const command =
        `set -e; rm -rf ${dir}; mkdir -p ${dir}; tar -x -C ${dir}; ` +
        `${dir}/jenkins-build.sh ${id} ${dir}/app.bundle ${registry} jenkins ${dir}/registry-password ${MONGO_NAME}`;
      return runAsync(
        "nsenter",
        [`--net=/run/netns/${h.ns.netns}`, "--", "ssh", ...sshArgs(h, agentPort(n)), command],
        archive,
      );
    };
    const docker = (h: Host, ...args: string[]) => runOk("docker", ["-H", h.engine?.host ?? "", ...args]);

    beforeAll(async () => {
      const t0 = Date.now();
      scratch = mkdtempSync(join(tmpdir(), "berth-e2e-build-"));
      chmodSync(scratch, 0o700);

      // The staging stack as shipped, but: services with a stand-in only, no pull-through cache,
      // Docker access over mutual TLS for the static agents, and a controller key we hold.
      const shipped = loadStack(REPO_ROOT, "staging");
      const hasStandin = (kind: keyof typeof SERVICE_CATALOG) => {
        try {
          standinFor(SERVICE_CATALOG[kind].image);
          return true;
        } catch {
          return false;
        }
      };
      config = structuredClone(shipped);
      config.services.minimal = shipped.services.minimal.filter(hasStandin);
      config.services.productionLike = shipped.services.productionLike.filter((s) => hasStandin(s.kind));
      mappings.push(
        `services left out, no stand-in image: ${[
          ...shipped.services.minimal.filter((k) => !hasStandin(k)),
          ...shipped.services.productionLike.filter((s) => !hasStandin(s.kind)).map((s) => s.name),
        ].join(", ")}`,
      );
      if (config.registry.pullThroughCache) {
        delete config.registry.pullThroughCache;
        mappings.push("registry.pullThroughCache left out: no Internet here");
      }
      config.jenkins.dockerAccess = { ...config.jenkins.dockerAccess, static: "tls" };
      mappings.push("jenkins.dockerAccess.static: tls (staging ships none)");
      runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "jenkins@e2e", "-f", controllerKey()]);
      config.jenkins.agentPublicKey = readFileSync(`${controllerKey()}.pub`, "utf8").trim();
      mappings.push("jenkins.agentPublicKey: a key made by the test (the stack's has no private half here)");
      expect(config.hosts.names).toHaveLength(2);
      expect(config.services.productionLike.map((s) => s.name)).toContain(MONGO_NAME);

      stack = await runConfig(config, { outputs: realKeyOutputs(generatedKeys) });
      knownHosts = (await resolveOutput(stack.outputs.agentKnownHosts)).value;
      knownHostsFile = join(scratch, "known_hosts");
      writeFileSync(knownHostsFile, knownHosts);
      registryPassword = generatedRegistryPasswords(
        stack.resources,
        config.registry.host,
        config.registry.users,
      ).jenkins as string;

      // The sample app as a git repository (its revision tags the image), sent to agents as a bundle.
      const repo = join(scratch, "sample-app");
      mkdirSync(repo);
      for (const f of ["Dockerfile", "app.py"]) writeFileSync(join(repo, f), readFileSync(join(APP_DIR, f)));
      const git = (...a: string[]) =>
        runOk("git", ["-C", repo, "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", ...a]);
      git("init", "-q", "-b", "main");
      git("add", ".");
      git("commit", "-q", "-m", "sample app");
      revision = git("rev-parse", "HEAD").trim();
      git("bundle", "create", "-q", join(scratch, "app.bundle"), "HEAD", "main");
      bundle = readFileSync(join(scratch, "app.bundle"));

      // Namespaces, the CI network, and real TLS.
      const floating = (name: string) => {
        const fip = stack.resources.find(
          (r) => r.type === "openstack:networking/floatingIp:FloatingIp" && r.name.startsWith(`${name}-`),
        )?.state.address;
        if (typeof fip !== "string") throw new Error(`no floating IP for ${name}`);
        return fip;
      };
      const prefixLength = Number(config.openstack.networkCidr.split("/")[1]);
      const made = createHostNamespaces(`berth-e2e-${String(process.pid)}`, [
        ...config.hosts.names.map((name, i) => ({
          privateIp: config.hosts.addresses[i] as string,
          floatingIp: floating(name),
          prefixLength,
        })),
      ]);
      removeNamespaces = made.remove;
      config.hosts.names.forEach((name, i) => hosts.push({ name, ns: made.hosts[i] as NetnsHost }));
      mappings.push(
        ...hosts.map(
          (h) =>
            `${h.name}: network namespace ${h.ns.netns}, ${h.ns.privateIp} on the shared CI network, ` +
            `floating ${h.ns.floatingIp} → ${h.ns.privateIp} (DNAT), docker0 ${BRIDGE_CIDR}`,
        ),
      );
      const pki = makeStackDockerTls(
        join(scratch, "docker-tls"),
        config.stack,
        hosts.map((h) => ({ name: h.name, address: h.ns.privateIp })),
      );
      const registryHost = hosts.find((h) => h.name === config.registry.host);
      if (!registryHost) throw new Error("no registry host");
      const tlsDir = join(scratch, "registry-tls");
      mkdirSync(tlsDir);
      const tls = issueRegistryTls({
        workDir: tlsDir,
        caCertPath: join(tlsDir, "ca.crt"),
        caName: `berth e2e ${config.stack} registry CA`,
        hostname: config.registry.hostname,
        privateIp: registryHost.ns.privateIp,
      });

      // The engines, one per namespace, at once.
      let t = Date.now();
      for (const [i, h] of hosts.entries()) {
        h.engine = startEngineInNetns(h.ns.netns, {
          BERTH_E2E_BRIDGE_CIDR: BRIDGE_CIDR,
          BERTH_E2E_DNS_SEARCH: config.dns.searchDomains.join(" "),
          BERTH_E2E_DOCKERD_ARGS: pki.hosts[i]?.dockerdArgs(config.hosts.dockerTlsPort) ?? "",
        });
      }
      figures.push(`engines up: ${String(Date.now() - t)} ms (${load()})`);
      t = Date.now();
      // Both engines' disks are copies of the seed image (startEngineInNetns), so build.sh finds the
      // stand-ins in each; without a usable seed both load the cached stand-ins at once.
      const loads = await Promise.all(
        hosts.map((h) =>
          runAsync("bash", [STANDINS_BUILD, h.engine?.socket ?? "", E2E_CACHE], Buffer.alloc(0), 45 * 60_000),
        ),
      );
      for (const l of loads)
        if (l.status !== 0) throw new Error(`images/standins/build.sh failed:\n${l.stderr}`);
      figures.push(
        `stand-ins in both (seeded: ${hosts.map((h) => (h.engine?.seed ? "yes" : "no")).join("/")}): ${String(Date.now() - t)} ms (${load()})`,
      );

      t = Date.now();
      const apply = async (i: number, h: Host) => {
        const used = new Map<string, Set<number>>();
        let next = 20000;
        // Each namespace is empty: a binding keeps its port unless another took it on the same address.
        const hostPort = (p: PublishedPort) => {
          const taken = used.get(p.hostIp) ?? new Set<number>();
          used.set(p.hostIp, taken);
          let port = p.external;
          while (taken.has(port)) port = next++;
          taken.add(port);
          return port;
        };
        const substituteUploads: Record<string, Record<string, string>> = {
          [BUILD_TLS_VOLUME]: {
            [`${BUILD_TLS_DIR}/ca.pem`]: pki.caPem,
            [`${BUILD_TLS_DIR}/cert.pem`]: readFileSync(
              join(pki.hosts[i]?.buildClientDir ?? "", "cert.pem"),
              "utf8",
            ),
            [`${BUILD_TLS_DIR}/key.pem`]: readFileSync(
              join(pki.hosts[i]?.buildClientDir ?? "", "key.pem"),
              "utf8",
            ),
          },
        };
        if (h === registryHost)
          substituteUploads["registry-nginx"] = {
            [NGINX_CERT]: readFileSync(tls.serverCertPath, "utf8"),
            [NGINX_KEY]: readFileSync(tls.serverKeyPath, "utf8"),
          };
        h.applied = await applyHostToEngine(stack, h.name, h.engine as Engine, {
          publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, h.ns.privateIp],
          hostIp: h.ns.privateIp,
          gatewayHostIp: DOCKER_BRIDGE_GATEWAY,
          substituteUploads,
          // Only the containers the program waits on (here the registry) are probed every second;
          // the other ~30 keep the program's 30 s. All probed every second, they kept this 2-core
          // machine at a load near 50 for the whole file (2026-11-30: over 30 minutes; 8.5 minutes
          // since, at a load of 10-12 from other work).
          healthInterval: "1s",
          healthIntervalFor: "waited",
          hostPort,
        });
        await h.applied.waitAllHealthy(600_000);
      };
      await Promise.all(hosts.map((h, i) => apply(i, h)));
      figures.push(`both hosts applied and healthy: ${String(Date.now() - t)} ms (${load()})`);

      // Each host's berth-pids-limit, from its own Ignition, as its unit runs it: it applies every
      // container's org.berth.pids-limit label (the provider has no pidsLimit), and gives containers
      // without one (a job's own) berth:limits.defaultPids.
      for (const h of hosts)
        pidsServices.push(startPidsLimitService(config, h.name, h.engine?.host ?? "", scratch));
      const sweeps = await Promise.all(pidsServices.map((p) => p.swept(300_000)));
      figures.push(`berth-pids-limit sweeps: ${sweeps.map(String).join(" ms, ")} ms (${load()})`);

      // dockerd trusts the registry's CA for the registry's address (certs.d), as the hosts' Ignition does.
      registry = `${registryHost.ns.privateIp}:${String(applied(hosts.indexOf(registryHost)).port("registry-nginx", 443, registryHost.ns.privateIp))}`;
      registry = registry.endsWith(":443") ? registry.slice(0, -4) : registry;
      certsCreated = mkdirSync(DOCKER_CERTS_D, { recursive: true });
      const entry = join(DOCKER_CERTS_D, registry);
      mkdirSync(entry); // fails if it exists: never take over (or, afterwards, remove) an entry the test did not make
      certsEntry = entry;
      writeFileSync(join(certsEntry, "ca.crt"), readFileSync(tls.caCertPath));
      mappings.push(
        `registry ${config.registry.hostname} → ${registry} (the name would need this machine's /etc/hosts); ` +
          `its CA in ${certsEntry}/ca.crt (removed afterwards)`,
      );
      console.log(
        `e2e: setup ${String(Date.now() - t0)} ms; ${figures.join("; ")}\n` +
          `e2e: real keys generated for ${String(generatedKeys.length)} tls PrivateKeys\n` +
          `e2e: mappings:\n  ${[...mappings, ...hosts.flatMap((h) => h.applied?.plan.mappings ?? [])].join("\n  ")}`,
      );
    }, 45 * 60_000);

    afterAll(async () => {
      console.log(`e2e: build figures:\n  ${figures.join("\n  ")}`);
      const t = Date.now();
      try {
        await Promise.all(pidsServices.map((p) => p.stop()));
        if (certsEntry) rmSync(certsEntry, { recursive: true, force: true });
        if (certsCreated)
          for (let d = DOCKER_CERTS_D; d.startsWith(certsCreated); d = dirname(d)) {
            try {
              rmdirSync(d);
            } catch {
              break;
            }
          }
        // Both engines at once (e2e-env.sh down in each namespace, as stopEngineInNetns runs it).
        await Promise.all(
          hosts.map(async (h) => {
            if (!h.engine) return;
            const down = [`--net=/run/netns/${h.ns.netns}`, "--", "bash", E2E_ENV, "down", h.engine.workdir];
            const stopped = await runAsync("nsenter", down, Buffer.alloc(0), 300_000);
            if (stopped.status !== 0) console.error(`e2e-env.sh down (${h.name}) failed:\n${stopped.stderr}`);
          }),
        );
      } finally {
        removeNamespaces?.();
        if (scratch) rmSync(scratch, { recursive: true, force: true });
      }
      console.log(`e2e: teardown (both engines down, namespaces removed): ${String(Date.now() - t)} ms`);
    }, 5 * 60_000);

    it("every agent on both hosts answers SSH with strict host key checking and only the program's agentKnownHosts", () => {
      const lines = knownHosts.split("\n").filter((l) => l !== "");
      expect(lines).toHaveLength(hosts.length * config.jenkins.agentsPerHost * 2);
      const t = Date.now();
      for (const h of hosts) {
        for (let n = 1; n <= config.jenkins.agentsPerHost; n++) {
          for (const keyType of ["ssh-ed25519", "rsa-sha2-512"]) {
            const r = inNetns(
              h.ns.netns,
              "ssh",
              [
                ...sshArgs(h, agentPort(n)).slice(0, -1),
                "-o",
                `HostKeyAlgorithms=${keyType}`,
                `jenkins@${h.ns.floatingIp}`,
                "id -un; hostname",
              ],
              { timeoutMs: 60_000 },
            );
            expect(
              r.stdout.trim().split("\n"),
              `${h.name} agent ${String(n)} ${keyType}: ${r.stderr}`,
            ).toEqual(["jenkins", `jenkins-agent-${String(n)}`]);
          }
        }
      }
      figures.push(
        `SSH to ${String(hosts.length * config.jenkins.agentsPerHost)} agents × 2 key types: ${String(Date.now() - t)} ms (${load()})`,
      );
      // The same connection with a known_hosts file without that agent's line is refused.
      const other = join(scratch, "known_hosts-other");
      writeFileSync(
        other,
        lines.filter((l) => !l.startsWith(`[${host(1).ns.floatingIp}]:${String(agentPort(1))} `)).join("\n") +
          "\n",
      );
      const refused = inNetns(host(1).ns.netns, "ssh", [
        ...sshArgs(host(1), agentPort(1)).map((a) =>
          a === `UserKnownHostsFile=${knownHostsFile}` ? `UserKnownHostsFile=${other}` : a,
        ),
        "true",
      ]);
      expect(refused.status).toBe(255);
      expect(refused.stderr).toMatch(/Host key verification failed/);
    }, 600_000);

    it("every container of both hosts carries the program's memory, CPU and process-count limits", async () => {
      const table: string[] = [];
      for (const [i, h] of hosts.entries()) {
        for (const c of applied(i).plan.containers) {
          if (!c.start) continue;
          const want = c.body.HostConfig as Record<string, unknown>;
          const got = at(await applied(i).api.inspect(c.name), "HostConfig");
          expect(want.Memory, `${h.name} ${c.name}: the program sets no memory limit`).toBeGreaterThan(0);
          expect(at(got, "Memory"), c.name).toBe(want.Memory);
          expect(at(got, "MemorySwap"), c.name).toBe(want.MemorySwap);
          expect(at(got, "NanoCpus"), c.name).toBe(want.NanoCpus);
          // The program's label, applied by the host's berth-pids-limit.
          const pids = Number((c.body.Labels as Record<string, string> | undefined)?.[PIDS_LIMIT_LABEL]);
          expect(pids, `${h.name} ${c.name}: the program sets no pids limit`).toBeGreaterThan(0);
          expect(at(got, "PidsLimit"), c.name).toBe(pids);
          table.push(
            `${h.name} ${c.name}: ${String(Number(at(got, "Memory")) / 2 ** 20)} MiB, swap ${String(Number(at(got, "MemorySwap")) / 2 ** 20)} MiB, ${String(Number(at(got, "NanoCpus")) / 1e9)} CPUs, ${String(at(got, "PidsLimit"))} pids`,
          );
        }
      }
      console.log(`e2e: limits in docker inspect:\n  ${table.join("\n  ")}`);
    }, 600_000);

    it("host 1's build credentials are refused by host 2's dockerd, and host 2's by host 1's", () => {
      for (const [from, to] of [
        [0, 1],
        [1, 0],
      ] as const) {
        const target = `tcp://${host(to).ns.privateIp}:${String(config.hosts.dockerTlsPort)}`;
        const r = ssh(host(from), 1, `DOCKER_HOST=${target} docker version --format '{{.Server.Os}}'`);
        expect(r.status, `${host(from).name} → ${host(to).name}: ${r.stdout}`).not.toBe(0);
        expect(r.stdout).not.toContain("linux");
        expect(r.stderr).toMatch(/certificate|tls|bad/i);
        // Its own host's dockerd accepts the same credentials.
        const own = ssh(host(from), 1, "docker version --format '{{.Server.Os}}'");
        expect(own.stdout.trim(), own.stderr).toBe("linux");
      }
    }, 600_000);

    it("a job on an agent of host 1 runs the whole sequence with the agent's own Docker access", async () => {
      const h = host(0);
      const who = ssh(
        h,
        1,
        'echo "$DOCKER_HOST $DOCKER_TLS_VERIFY $DOCKER_CERT_PATH"; docker version --format "{{.Server.Os}}"',
      );
      expect(who.stdout.trim().split("\n"), who.stderr).toEqual([
        `tcp://${h.ns.privateIp}:${String(config.hosts.dockerTlsPort)} 1 ${BUILD_TLS_DIR}`,
        "linux",
      ]);
      const t = Date.now();
      const r = await build(h, 1, "sample-1");
      const wall = Date.now() - t;
      expect(r.status, `${r.stdout}\n${r.stderr.slice(-4000)}`).toBe(0);
      const f = facts(r.stdout);
      expect(f.get("REV")).toBe(revision);
      expect(f.get("HOLDER")).toBe("berth-holder-sample-1");
      // The app on ci-services resolved the short name to the production-like address.
      const mongo = config.services.productionLike.find((s) => s.name === MONGO_NAME);
      expect(f.get("APP")).toBe(
        `sample-app ${revision}: ${MONGO_NAME} (${mongo?.address ?? ""}) answers ping`,
      );
      expect(f.get("PUSHED")).toMatch(
        new RegExp(`^${registry.replace(/\./g, "\\.")}/berth-e2e/sample-app@sha256:[0-9a-f]{64}$`),
      );
      // The tests ran and passed in their containers (their reports are on the job's stderr).
      expect(r.stderr).toMatch(
        /ok test_redis_on_localhost\nok test_mongodb_on_localhost\n3 passed, 0 failed/,
      );
      expect(r.stderr).toMatch(/ok test_counter_through_redis\nok test_mongodb_hello\n2 passed, 0 failed/);
      // The holder's limits are the template's (the program's holder limits).
      const tpl = at(await applied(0).api.inspect(config.services.networkHolders[0] ?? ""), "HostConfig");
      expect(f.get("HOLDER_LIMITS")).toBe(
        `${String(at(tpl, "Memory"))} ${String(at(tpl, "MemorySwap"))} ${String(at(tpl, "NanoCpus"))} ${String(at(tpl, "PidsLimit"))}`,
      );
      expect(at(tpl, "PidsLimit")).toBe(config.limits.containers.holder.pids);
      expect(Number(f.get("HOLDER_LIMITS").split(" ")[0])).toBeGreaterThan(0);
      // The image carries the revision; the registry holds it (nginx, TLS and basic auth).
      expect(
        docker(
          h,
          "image",
          "inspect",
          "--format",
          '{{index .Config.Labels "org.opencontainers.image.revision"}}',
          `sample-app:${revision}`,
        ).trim(),
      ).toBe(revision);
      expect(docker(h, "ps", "-a", "--filter", `label=${HOLDER_LABEL}=build`, "--format", "{{.Names}}")).toBe(
        "",
      );
      figures.push(
        `build sample-1 on ${h.name} jenkins-agent-1: ${String(wall)} ms wall (ssh included; ${load()}): ` +
          f.steps.map(([s, ms]) => `${s} ${String(ms)} ms`).join(", "),
      );
      console.log(
        `e2e: ${figures.at(-1) ?? ""}\ne2e: holder limits (memory, memory+swap, NanoCpus, pids): ${f.get("HOLDER_LIMITS")}` +
          `\ne2e: ${jobLines(r.stderr)}`,
      );
    }, 1_500_000);

    it("two builds at once on one host do not clash, and their holders are gone afterwards", async () => {
      const h = host(0);
      const t = Date.now();
      const [a, b] = await Promise.all([build(h, 2, "sample-2"), build(h, 3, "sample-3")]);
      const wall = Date.now() - t;
      for (const [id, r] of [
        ["sample-2", a],
        ["sample-3", b],
      ] as const) {
        expect(r.status, `${id}: ${r.stdout}\n${r.stderr.slice(-4000)}`).toBe(0);
        expect(facts(r.stdout).get("HOLDER")).toBe(`berth-holder-${id}`);
        figures.push(
          `concurrent ${id}: ` +
            facts(r.stdout)
              .steps.map(([s, ms]) => `${s} ${String(ms)} ms`)
              .join(", "),
        );
      }
      figures.push(`two concurrent builds on ${h.name}: ${String(wall)} ms wall (${load()})`);
      console.log(`e2e: ${figures.slice(-3).join("\ne2e: ")}\ne2e: ${jobLines(a.stderr, b.stderr)}`);
      expect(docker(h, "ps", "-a", "--filter", `label=${HOLDER_LABEL}=build`, "--format", "{{.Names}}")).toBe(
        "",
      );
      expect(docker(h, "ps", "-a", "--filter", "name=sample-app-", "--format", "{{.Names}}")).toBe("");
    }, 1_800_000);

    it("a job on host 2 builds the same way and pushes to host 1's registry over the CI network", async () => {
      const t = Date.now();
      const r = await build(host(1), 1, "sample-h2");
      expect(r.status, `${r.stdout}\n${r.stderr.slice(-4000)}`).toBe(0);
      const f = facts(r.stdout);
      expect(f.get("REV")).toBe(revision);
      expect(f.get("PUSHED")).toContain(`${registry}/berth-e2e/sample-app@sha256:`);
      figures.push(
        `build sample-h2 on ${host(1).name}: ${String(Date.now() - t)} ms wall (${load()}): ` +
          f.steps.map(([s, ms]) => `${s} ${String(ms)} ms`).join(", "),
      );
      console.log(`e2e: ${figures.at(-1) ?? ""}\ne2e: ${jobLines(r.stderr)}`);
    }, 1_500_000);
  },
);
