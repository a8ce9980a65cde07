/**
 * The metric endpoints on a real Docker engine: node_exporter as the REAL program registers it for
 * `testing-ci-1` (run under Pulumi's mocks, applied by testkit/e2e/harness.ts with the stand-in built
 * from Debian's prometheus-node-exporter), and dockerd's own metrics endpoint from the host's
 * daemon.json `metrics-addr`. Each must answer on the address the program gives it and nowhere
 * else. The host's private address cannot be bound here, so it is mapped, as the harness maps
 * every private-address binding, to the engine's own bridge address (never loopback), and the
 * tests check that loopback gets nothing.
 *
 * node_exporter's bind mount of the host's `/` is mapped to a scratch directory (the test machine's
 * mounts never enter a container); the textfile writer (`berth-textfile-metrics`, exactly as
 * rendered into the host's Ignition) fills its textfile directory from this engine.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { loadStack } from "../../config/load.ts";
import type { BerthConfig } from "../../config/types.ts";
import { buildHostIgnition, dockerDaemonJson } from "../../ignition/host.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";
import { TEXTFILE_DIR, TEXTFILE_METRICS_SCRIPT, TEXTFILE_NAME } from "../../renderers/host-metrics.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { fileText } from "../ignition/fixtures.ts";
import { TYPES, applyHostToEngine, freePort, type AppliedHost } from "../../testkit/e2e/harness.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  REPO_ROOT,
  bridgeGateway,
  buildStandins,
  run,
  startEngine,
  stopEngine,
  type Engine,
} from "../../testkit/e2e/support/engine.ts";

const HOST = "testing-ci-1";
/** e2e-env.sh's default bridge gateway (BERTH_E2E_BRIDGE_CIDR), which exists before dockerd starts. */
const ENGINE_BRIDGE = "10.213.8.1";

const tools = requireE2eTools("metric endpoints", [{ tool: "docker", debianPackage: "docker.io" }]);

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port, timeout: 3000 });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function scrape(host: string, port: number): Promise<string> {
  const res = await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return res.text();
}

describe.skipIf(tools.skip)(`metric endpoints of ${HOST} on a real Docker engine`, () => {
  let engine: Engine | undefined;
  let applied: AppliedHost;
  let config: BerthConfig;
  let privateIp = "";
  let programMetricsAddr = "";
  let dockerdPort = 0;
  let scratch = "";
  let rootfs = "";
  let writer = "";

  beforeAll(async () => {
    config = loadStack(REPO_ROOT, "testing");
    privateIp = config.hosts.addresses[config.hosts.names.indexOf(HOST)] as string;
    const base = {
      ...hostIgnitionBase(config, HOST),
      dockerVolumeId: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    };
    programMetricsAddr = String(dockerDaemonJson(base)["metrics-addr"]);
    scratch = mkdtempSync(join(tmpdir(), "berth-e2e-metrics-"));
    // What node_exporter sees as the host's `/`: readable by its user (nobody).
    rootfs = join(scratch, "rootfs");
    mkdirSync(join(rootfs, TEXTFILE_DIR), { recursive: true });
    for (const dir of [scratch, rootfs]) chmodSync(dir, 0o755);
    for (let d = TEXTFILE_DIR; d !== "/"; d = d.slice(0, d.lastIndexOf("/")) || "/")
      chmodSync(join(rootfs, d), 0o755);
    writer = join(scratch, TEXTFILE_METRICS_SCRIPT);
    writeFileSync(writer, fileText(buildHostIgnition(base), `/usr/local/bin/${TEXTFILE_METRICS_SCRIPT}`), {
      mode: 0o755,
    });

    // dockerd's metrics-addr as the program renders it, its private address mapped like the harness's.
    dockerdPort = await freePort();
    engine = startEngine(undefined, undefined, {
      env: { BERTH_E2E_METRICS_ADDR: `${ENGINE_BRIDGE}:${String(dockerdPort)}` },
    });
    expect(await bridgeGateway(engine)).toBe(ENGINE_BRIDGE);
    buildStandins(engine);

    // Only node_exporter (and what the harness needs to find the host's provider).
    const stack: StackRun = await runConfig(config);
    const resources = stack.resources.filter(
      (r) =>
        r.type === TYPES.provider ||
        r.type === TYPES.dockerHost ||
        r.name.startsWith(`${HOST}-node-exporter`),
    );
    applied = await applyHostToEngine({ resources }, HOST, engine, {
      publishedIps: [privateIp],
      hostIp: ENGINE_BRIDGE,
      hostPathMap: { "/": rootfs },
      healthInterval: "1s",
    });
    await applied.waitAllHealthy(120_000);
    console.log(`e2e: mappings:\n  ${applied.plan.mappings.join("\n  ")}`);
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

  it("the program publishes node_exporter on the private address only, and dockerd's metrics-addr is the private address", () => {
    expect(applied.plan.ports.map((p) => `${p.container} ${p.ip}:${String(p.external)}`)).toEqual([
      `node-exporter ${privateIp}:9100`,
    ]);
    expect(programMetricsAddr).toBe(`${privateIp}:9323`);
  });

  it("node_exporter answers on the mapped private address and serves the textfile writer's metrics", async () => {
    const r = run(writer, [join(rootfs, TEXTFILE_DIR)], { env: { DOCKER_HOST: engine?.host ?? "" } });
    expect(r.status, r.stderr).toBe(0);
    const port = applied.port("node-exporter", 9100, privateIp);
    const body = await scrape(ENGINE_BRIDGE, port);
    expect(body).toMatch(/^node_boot_time_seconds \S+$/m);
    expect(body).toMatch(/^node_textfile_scrape_error 0$/m);
    // The writer saw node_exporter's own container (restart policy unless-stopped).
    expect(body).toMatch(/^berth_container_restart_count\{container="node-exporter"\} 0$/m);
    expect(run("ls", [join(rootfs, TEXTFILE_DIR)]).stdout.trim()).toBe(TEXTFILE_NAME);
  });

  it("node_exporter answers nowhere else: not on loopback", async () => {
    const port = applied.port("node-exporter", 9100, privateIp);
    expect(await accepts(ENGINE_BRIDGE, port)).toBe(true);
    expect(await accepts("127.0.0.1", port)).toBe(false);
  });

  it("dockerd's metrics endpoint answers on the mapped private address, and not on loopback", async () => {
    const body = await scrape(ENGINE_BRIDGE, dockerdPort);
    expect(body).toMatch(/^engine_daemon_health_checks_failed_total \d+$/m);
    expect(await accepts("127.0.0.1", dockerdPort)).toBe(false);
  });
});
