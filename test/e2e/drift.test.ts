/**
 * `berth drift` on a real dockerd on btrfs.
 *
 * The REAL program for `testing-ci-1` (under Pulumi's mocks) is applied to a private engine with
 * testkit/e2e/harness.ts, then the host is tampered with as an operator or a crash would: an undeclared
 * container, network and volume carrying the stack's label, a declared container stopped, one
 * removed, one re-created from another image, and per-build containers as the Jenkins Docker plugin
 * labels them (this controller's, with a live and a gone node, and another controller's). The report
 * and the prune are checked exactly, and the exit codes through the `berth` command itself.
 *
 * Substituted, and printed: the harness runs stand-in images and publishes ports on free ports of
 * the engine's bridge gateway; the declaration the comparison uses gets the same substitutions
 * (image → stand-in, published address → where the harness published it), nothing else.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BERTH_HOST_LABEL, BERTH_STACK_LABEL, DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import { loadStack } from "../../config/load.ts";
import type { BerthConfig } from "../../config/types.ts";
import { Engine as DriftEngine } from "../../cli/engine.ts";
import {
  driftHost,
  EXIT_DRIFT,
  EXIT_ERROR,
  EXIT_NO_DRIFT,
  EXIT_USAGE,
  PLUGIN_JENKINS_ID_LABEL,
  PLUGIN_NODE_NAME_LABEL,
  renderDrift,
  summarize,
  type DriftOptions,
  type DriftReport,
} from "../../cli/drift.ts";
import { declaredHosts, portKey, type DeclaredHost } from "../../plan/declared.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";
import { cli } from "../support/cli.ts";
import { applyHostToEngine, type AppliedHost } from "../../testkit/e2e/harness.ts";
import { agentHostKeyUploads, issueRegistryTls } from "../../testkit/e2e/support/certs.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  bridgeGateway,
  buildStandins,
  REPO_ROOT,
  startEngine,
  stopEngine,
  type Engine,
} from "../../testkit/e2e/support/engine.ts";
import { at, type Json } from "../../lib/json.ts";

const HOST = "testing-ci-1";
const OURS = "0123456789abcdef0123456789abcdef";
const THEIRS = "fedcba9876543210fedcba9876543210";

const tools = requireE2eTools("berth drift", [
  { tool: "openssl", debianPackage: "openssl" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
]);

/** The engine's second-precision creation time, as the report prints it. */
function second(iso: Json | undefined): string {
  return new Date(Math.floor(Date.parse(String(iso)) / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

describe.skipIf(tools.skip)("berth drift on a real Docker engine", () => {
  let engine: Engine | undefined;
  let applied: AppliedHost;
  let config: BerthConfig;
  let stack: StackRun;
  let declared: DeclaredHost;
  let scratch = "";

  const drift = async (opts: DriftOptions = {}): Promise<DriftReport> => {
    const e = new DriftEngine(engine?.host ?? "");
    try {
      return summarize("testing", [await driftHost(e, "testing", declared, opts)]);
    } finally {
      e.close();
    }
  };
  const labels = { [BERTH_STACK_LABEL]: "testing", [BERTH_HOST_LABEL]: HOST };
  /** A stopped container that exists only to be found (it never starts). */
  const createIdle = async (name: string, extraLabels: Record<string, string>) => {
    await applied.api.call("POST", `/containers/create?name=${name}`, {
      Image: applied.container("redis").image,
      Labels: extraLabels,
      Entrypoint: ["sleep", "infinity"],
    });
    return applied.api.inspect(name);
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-drift-"));
    config = loadStack(REPO_ROOT, "testing");
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
    engine = startEngine();
    buildStandins(engine);
    const gateway = await bridgeGateway(engine);
    // node_exporter's bind of the host's `/`, from a scratch directory (mapped in the declaration too).
    const hostRoot = join(scratch, "host-root");
    mkdirSync(hostRoot);
    applied = await applyHostToEngine(stack, HOST, engine, {
      publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
      hostIp: gateway,
      substituteUploads,
      hostPathMap: { "/": hostRoot },
    });
    // The declaration with the harness's substitutions (and only those).
    const d = declaredHosts(stack).get(HOST);
    if (!d) throw new Error(`${HOST} declares nothing`);
    declared = {
      ...d,
      containers: d.containers.map((c) => ({
        ...c,
        image: applied.container(c.name).image,
        ports: c.ports
          .map((key) => {
            const p = applied.plan.ports.find(
              (x) => x.container === c.name && portKey(x.ip, x.external, x.internal, x.protocol) === key,
            );
            if (!p) throw new Error(`${c.name}: ${key} was not published by the harness`);
            return portKey(p.hostIp, p.hostPort, p.internal, p.protocol);
          })
          .sort(),
        mounts: c.mounts.map((m) => (m.startsWith("bind:/:") ? `bind:${hostRoot}:${m.slice(7)}` : m)).sort(),
      })),
    };
    console.log(`e2e: drift mappings:\n  ${applied.plan.mappings.join("\n  ")}`);
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

  it("the applied host carries the stack's labels and shows no drift (exit 0)", async () => {
    expect(at(await applied.api.inspect("redis"), "Config", "Labels", BERTH_STACK_LABEL)).toBe("testing");
    const nets = (await applied.api.call("GET", "/networks")) as Json[];
    expect(
      at(
        nets.find((n) => at(n, "Name") === "ci-services"),
        "Labels",
      ),
    ).toEqual(labels);
    const report = await drift();
    expect(renderDrift(report)).toBe(
      [`berth drift testing`, `${HOST} (${engine?.host ?? ""}):`, "  no drift", "no drift (exit 0)"].join(
        "\n",
      ),
    );
    expect(report.exitCode).toBe(EXIT_NO_DRIFT);
  });

  it("reports orphans, missing, stopped and changed containers exactly, and prunes only old orphans of this controller", async () => {
    const api = applied.api;
    // Orphans carrying the stack's label.
    const stray = await createIdle("stray", labels);
    const net = (await api.call("POST", "/networks/create", { Name: "stray-net", Labels: labels })) as Json;
    await api.call("POST", "/volumes/create", { Name: "stray-data", Labels: labels });
    // Per-build containers as the Docker plugin labels them.
    const gone = await createIdle("build-gone", {
      [PLUGIN_JENKINS_ID_LABEL]: OURS,
      [PLUGIN_NODE_NAME_LABEL]: "docker-gone",
    });
    await createIdle("build-live", {
      [PLUGIN_JENKINS_ID_LABEL]: OURS,
      [PLUGIN_NODE_NAME_LABEL]: "docker-live",
    });
    await createIdle("build-theirs", {
      [PLUGIN_JENKINS_ID_LABEL]: THEIRS,
      [PLUGIN_NODE_NAME_LABEL]: "docker-x",
    });
    // A declared container stopped, one removed, one re-created from another image.
    await api.call("POST", "/containers/redis/stop?t=1");
    await api.call("DELETE", "/containers/mongodb?force=1");
    await api.call("POST", "/commit?container=dnsmasq&repo=berth-e2e/dnsmasq-changed&tag=latest");
    const dnsmasq = applied.container("dnsmasq");
    await applied.remove("dnsmasq");
    await applied.create({
      ...dnsmasq,
      body: { ...dnsmasq.body, Image: "berth-e2e/dnsmasq-changed:latest" },
    });
    // A younger orphan, at least 3 s after the others.
    const netInfo = await api.call("GET", `/networks/${String(at(net, "Id"))}`);
    const oldest = Math.max(
      ...[at(stray, "Created"), at(gone, "Created"), at(netInfo, "Created")].map((c) =>
        Date.parse(String(c)),
      ),
    );
    await sleep(3500);
    const young = await createIdle("stray-young", labels);
    const vol = await api.call("GET", "/volumes/stray-data");

    const nodes = join(scratch, "nodes");
    writeFileSync(nodes, "# live nodes\ndocker-live\n");
    const expected = (pruned: Record<string, string>) =>
      [
        `berth drift testing`,
        `${HOST} (${engine?.host ?? ""}):`,
        "  differs container dnsmasq",
        "    image: declared berth-standin/dnsmasq:latest, running berth-e2e/dnsmasq-changed:latest",
        "  stopped container redis",
        "    state: exited",
        "  missing container mongodb",
        `  orphan container stray (created ${second(at(stray, "Created"))}${pruned.stray ?? ""})`,
        `  orphan container stray-young (created ${second(at(young, "Created"))}${pruned["stray-young"] ?? ""})`,
        `  orphan per-build container build-gone (created ${second(at(gone, "Created"))}${pruned["build-gone"] ?? ""})`,
        "    node docker-gone is gone",
        `  orphan network stray-net (created ${second(at(netInfo, "Created"))}${pruned["stray-net"] ?? ""})`,
        `  orphan volume stray-data (created ${second(at(vol, "CreatedAt"))}${pruned["stray-data"] ?? ""})`,
        "  note: 1 per-build container(s) of other controllers left alone",
      ].join("\n");

    const report = await drift({ jenkinsId: OURS, jenkinsNodes: new Set(["docker-live"]) });
    const order = (r: DriftReport) => renderDrift(r).split("\n");
    expect(order(report).slice(0, -1).join("\n")).toBe(expected({}));
    expect(report.exitCode).toBe(EXIT_DRIFT);
    expect(order(report).at(-1)).toBe("drift: 8 finding(s) (exit 7)");

    // Prune with a 1-minute grace, at a time the first orphans are 61 s old and the young one is not.
    const now = new Date(oldest + 61_000);
    const pruned = await drift({
      jenkinsId: OURS,
      jenkinsNodes: new Set(["docker-live"]),
      prune: true,
      graceSeconds: 60,
      now,
    });
    expect(order(pruned).slice(0, -1).join("\n")).toBe(
      expected({
        stray: ", removed",
        "stray-young": ", not removed: too young",
        "build-gone": ", removed",
        "stray-net": ", removed",
        "stray-data": ", not removed: volumes not pruned (--prune-volumes)",
      }),
    );
    expect(pruned.exitCode).toBe(EXIT_DRIFT);
    const exists = async (path: string) =>
      await api.call("GET", path).then(
        () => true,
        () => false,
      );
    expect(await exists("/containers/stray/json")).toBe(false);
    expect(await exists("/containers/build-gone/json")).toBe(false);
    expect(await exists("/networks/stray-net")).toBe(false);
    // Left alone: the young orphan, the volume, the live node's and the other controller's builds,
    // and every declared container (the stopped redis too).
    for (const path of [
      "/containers/stray-young/json",
      "/volumes/stray-data",
      "/containers/build-live/json",
      "/containers/build-theirs/json",
      "/containers/redis/json",
      "/containers/dnsmasq/json",
      "/containers/registry/json",
    ])
      expect(await exists(path), path).toBe(true);

    // Without a live node list, no per-build container is judged (nor pruned).
    const blind = await drift({ jenkinsId: OURS, prune: true, graceSeconds: 0 });
    expect(await exists("/containers/build-live/json")).toBe(true);
    expect(blind.hosts[0]?.notes).toEqual([
      "1 per-build container(s) of other controllers left alone",
      "1 per-build container(s) of this controller not judged: no --jenkins-nodes (build-live)",
    ]);
    expect(await exists("/containers/stray-young/json")).toBe(false);
    expect(await exists("/volumes/stray-data")).toBe(true);
  });

  it("through the berth command: exit 7 on drift, 1 when a host cannot be read, 2 on bad usage", async () => {
    const host = `${HOST}=${engine?.host ?? ""}`;
    const r = await cli(REPO_ROOT, "drift", "testing", "--docker-host", host, "--json");
    expect(r.code, r.err).toBe(EXIT_DRIFT);
    const report = JSON.parse(r.out) as DriftReport;
    expect(report.exitCode).toBe(EXIT_DRIFT);
    // The program's own declaration (no stand-in substitution): redis is stopped, mongodb missing.
    const findings = report.hosts[0]?.findings ?? [];
    expect(findings.find((f) => f.name === "mongodb")?.kind).toBe("missing");
    expect(findings.find((f) => f.name === "redis")?.kind).toBe("stopped");

    const down = await cli(
      REPO_ROOT,
      "drift",
      "testing",
      "--docker-host",
      `${HOST}=unix://${scratch}/none.sock`,
    );
    expect(down.code).toBe(EXIT_ERROR);
    expect(down.out).toContain(
      `${HOST} (unix://${scratch}/none.sock):\n  error: unix://${scratch}/none.sock: GET`,
    );
    expect(down.out.split("\n").at(-1)).toBe("error (exit 1)");

    const bad = await cli(
      REPO_ROOT,
      "drift",
      "testing",
      "--docker-host",
      "nohost",
      "--grace-minutes",
      "soon",
    );
    expect(bad.code).toBe(EXIT_USAGE);
    expect(bad.err).toBe(
      'berth drift: --docker-host "nohost": use <host>=<url>, e.g. testing-ci-1=unix:///run/docker.sock\n' +
        '  --grace-minutes must be a whole number of minutes (got "soon")',
    );
  });
});
