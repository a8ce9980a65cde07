/**
 * Production names from everywhere a build runs (issue #15 item 3, issue #17 "names per region"),
 * on a real dockerd on btrfs.
 *
 * The REAL program for `testing-ci-1`, with two search domains (`berth:dns.searchDomains`, one per
 * region, as staging ships), is applied to a private engine with testkit/e2e/harness.ts. The engine's
 * daemon.json carries the `dns-search` the host's Ignition renders for that stack (read from the
 * program's own daemon.json, not written here). Then a short production-like name such as
 * `mongodb-cluster-a-node-1`, and the same name under each search domain, must resolve to the
 * service's fixed address in:
 *
 * - a static agent (`jenkins-agent-1`, exactly as the program creates it);
 * - a per-build container, created with the fields Berth's JCasC template gives the Docker plugin
 *   (`network`, `dnsString`, `dnsSearchString`, applied as DockerTemplateBase.fillContainerConfig
 *   does: NetworkMode, Dns, DnsSearch);
 * - a container a build starts on `ci-services` with no DNS flag at all (only the short name: see
 *   below);
 * - a container in a build's holder (`berth-holder start`, then `--network container:<holder>`).
 *
 * A flagless container on `ci-services` resolves through Docker's embedded DNS, which answers the
 * production-like containers' names itself (each is named after its service) and forwards other
 * names to the daemon's host resolvers. On a host those are systemd-resolved's servers, dnsmasq
 * first (the resolved drop-in's global DNS=); on this test engine they are the test machine's, so
 * `<name>.<domain>` is not asked of such a container here: that part is not proven.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { loadStack } from "../../config/load.ts";
import type { BerthConfig } from "../../config/types.ts";
import { dockerDaemonJson } from "../../ignition/index.ts";
import { runConfig } from "../../plan/run.ts";
import { cascInput } from "../../program.ts";
import { jenkinsDockerClouds } from "../../renderers/casc.ts";
import { editedStackRoot } from "../support/stacks.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { applyHostToEngine, type AppliedHost } from "../../testkit/e2e/harness.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  E2E_CACHE,
  STANDINS_BUILD,
  bridgeGateway,
  run,
  runOk,
  startEngine,
  stopEngine,
  type Engine,
  type RunResult,
} from "../../testkit/e2e/support/engine.ts";
import { retargetHolders, viaPublishedPort } from "./support/holders.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";

const HOST = "testing-ci-1";
const NGINX_CERT = "/etc/nginx/berth/registry.crt";
const NGINX_KEY = "/etc/nginx/berth/registry.key";
/** Two regions' domains, the first preferred. */
const DOMAINS = ["ci.example.internal", "eu-west-1.ci.example.internal"];

const tools = requireE2eTools("production names from every kind of container", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]);

describe.skipIf(tools.skip)("production-like names in every container a build runs in", () => {
  let engine: Engine | undefined;
  let applied: AppliedHost;
  let config: BerthConfig;
  let daemonSearch: string[] = [];
  let scratch = "";
  const docker = (...args: string[]) => run("docker", ["-H", engine?.host ?? "", ...args]);
  const dockerOk = (...args: string[]) => runOk("docker", ["-H", engine?.host ?? "", ...args]);
  const agentImage = () => standinFor(config.jenkins.image);
  /** `getent hosts` of each name, then the container's search line, from a shell in the container. */
  const probe = (names: readonly string[]) =>
    `for n in ${names.join(" ")}; do getent hosts "$n" | cut -d' ' -f1 | head -n 1 || echo none; done; ` +
    `grep '^search ' /etc/resolv.conf`;
  const expectNames = (where: string, r: RunResult, names: readonly string[], address: string) => {
    expect(r.status, `${where}: ${r.stderr}`).toBe(0);
    expect(r.stdout.trim().split("\n"), where).toEqual([
      ...names.map(() => address),
      `search ${DOMAINS.join(" ")}`,
    ]);
  };
  const service = () => {
    const svc = config.services.productionLike.find((s) => s.name === "mongodb-cluster-a-node-1");
    if (!svc) throw new Error("the testing stack has a production-like mongodb-cluster-a-node-1");
    return svc;
  };
  const allNames = () => [service().name, ...DOMAINS.map((d) => `${service().name}.${d}`)];

  beforeAll(async () => {
    const t0 = Date.now();
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-names-"));
    const root = editedStackRoot((c) => {
      (c["berth:dns"] as Record<string, unknown>).searchDomains = DOMAINS;
    });
    config = loadStack(root, "testing");
    expect(config.dns.searchDomains).toEqual(DOMAINS);
    const stack = await runConfig(config);
    // The dns-search of the host's daemon.json, as its Ignition renders it.
    daemonSearch = dockerDaemonJson({
      ...hostIgnitionBase(config, HOST),
      dockerVolumeId: "00000000-0000-0000-0000-000000000000",
    })["dns-search"] as string[];
    expect(daemonSearch).toEqual(DOMAINS);

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
    for (let n = 1; n <= config.jenkins.agentsPerHost; n++) {
      const agent = `jenkins-agent-${String(n)}`;
      substituteUploads[agent] = agentHostKeyUploads(scratch, agent);
    }

    engine = startEngine(undefined, undefined, { dnsSearch: daemonSearch });
    const built = run("bash", [STANDINS_BUILD, engine.socket, E2E_CACHE], { timeoutMs: 45 * 60_000 });
    if (built.status !== 0) throw new Error(`images/standins/build.sh failed:\n${built.stderr}`);
    const gateway = await bridgeGateway(engine);
    applied = await applyHostToEngine(stack, HOST, engine, {
      publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
      hostIp: gateway,
      substituteUploads,
      healthInterval: "1s",
    });
    await retargetHolders(applied, viaPublishedPort);
    await applied.waitAllHealthy(180_000);
    console.log(
      `e2e: names setup ${String(Date.now() - t0)} ms\n` +
        `e2e: mappings:\n  ${applied.plan.mappings.join("\n  ")}`,
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

  it("the engine's daemon.json carries the host's dns-search", () => {
    const info = readFileSync(join(engine?.workdir ?? "", "daemon.json"), "utf8");
    expect((JSON.parse(info) as Record<string, unknown>)["dns-search"]).toEqual(DOMAINS);
  });

  it("a static agent: the short name and the name under each domain", () => {
    const r = docker("exec", "-u", "jenkins", "jenkins-agent-1", "bash", "-c", probe(allNames()));
    expectNames("jenkins-agent-1", r, allNames(), service().address);
  });

  it("a per-build container created from the JCasC template's network, dnsString and dnsSearchString", () => {
    const perBuild = { ...config.jenkins.perBuild, enabled: true, hosts: [HOST] };
    const [cloud] = jenkinsDockerClouds({ ...cascInput(config), perBuild }, { [HOST]: "203.0.113.5" });
    const base = cloud?.docker.templates[0]?.dockerTemplateBase;
    if (!base) throw new Error("no Docker cloud template");
    expect(base.dnsSearchString).toBe(DOMAINS.join(" "));
    const r = docker(
      "run",
      "--rm",
      "--network",
      base.network,
      ...base.dnsString.split(" ").flatMap((d) => ["--dns", d]),
      ...base.dnsSearchString.split(" ").flatMap((d) => ["--dns-search", d]),
      "--entrypoint",
      "bash",
      agentImage(),
      "-c",
      probe(allNames()),
    );
    expectNames("per-build container", r, allNames(), service().address);
  });

  it("a container a build starts on ci-services with no DNS flag: the short name, and the daemon's search list", () => {
    const r = docker(
      "run",
      "--rm",
      "--network",
      "ci-services",
      "--entrypoint",
      "bash",
      agentImage(),
      "-c",
      probe([service().name]),
    );
    expectNames("flagless container on ci-services", r, [service().name], service().address);
  });

  it("a container in a build's holder (berth-holder start, --network container:)", () => {
    const sock = engine?.socket ?? "";
    const started = docker(
      "run",
      "--rm",
      "-v",
      `${sock}:/var/run/docker.sock`,
      "--entrypoint",
      "berth-holder",
      agentImage(),
      "start",
      "names-1",
    );
    expect(started.status, started.stderr).toBe(0);
    const holder = started.stdout.trim();
    expect(holder).toBe("berth-holder-names-1");
    try {
      const r = docker(
        "run",
        "--rm",
        "--network",
        `container:${holder}`,
        "--entrypoint",
        "bash",
        agentImage(),
        "-c",
        probe(allNames()),
      );
      expectNames("container in the holder", r, allNames(), service().address);
    } finally {
      dockerOk("rm", "-f", holder);
    }
  });
});
