/**
 * `berth dev testing --production-like` brought up by Debian's docker-compose (v1) on the
 * end-to-end engine: every service becomes healthy with the health checks the Compose file carries,
 * the minimal set answers on 127.0.0.1's default ports, and production-like names resolve through
 * the file's dnsmasq from a container on the services network.
 *
 * Mappings this test makes, in a Compose override file beside the generated one (the generated
 * file itself is used as written): images → stand-ins (images/standins; nothing can be pulled
 * here), and health-check interval 30s → 1s, start period 60s → 5s, so the test waits seconds,
 * not minutes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { PROJECT_ROOT } from "../../config/root.ts";
import { cli } from "../support/cli.ts";
import { requireE2eTools } from "./support/tools.ts";
import {
  DockerApi,
  buildStandins,
  run,
  startEngine,
  stopEngine,
  type Engine,
} from "../../testkit/e2e/support/engine.ts";
import { at } from "../../lib/json.ts";
import { standinFor } from "../../testkit/e2e/support/images.ts";
import { exchange, mongoPing } from "./support/wire.ts";

const tools = requireE2eTools("berth dev on the engine", [
  { tool: "docker-compose", debianPackage: "docker-compose" },
]);

interface ComposeDoc {
  services: Record<string, { image: string; healthcheck?: Record<string, unknown> }>;
}

describe.skipIf(tools.skip)("berth dev: docker-compose up on the end-to-end engine", () => {
  let engine: Engine | undefined;
  let api: DockerApi;
  let dir = "";
  let services: string[] = [];
  const project = "berth-testing";

  /** docker-compose in the generated directory, on the engine, with the stand-in override. */
  const composeIn = (...args: string[]) => {
    const r = spawnSync(
      tools.paths["docker-compose"] ?? "docker-compose",
      ["-f", "docker-compose.yml", "-f", "standins.yml", ...args],
      {
        cwd: dir,
        encoding: "utf8",
        timeout: 300_000,
        env: { ...process.env, DOCKER_HOST: engine?.host ?? "" },
      },
    );
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-dev-e2e-"));
    const written = await cli(PROJECT_ROOT, "dev", "testing", "--production-like", "--out", dir);
    if (written.code !== 0) throw new Error(written.err);
    const doc = parse(readFileSync(join(dir, "docker-compose.yml"), "utf8")) as ComposeDoc;
    services = Object.keys(doc.services);
    const override = {
      version: "2.4",
      services: Object.fromEntries(
        Object.entries(doc.services).map(([name, s]) => [
          name,
          {
            image: standinFor(s.image),
            ...(s.healthcheck ? { healthcheck: { interval: "1s", start_period: "5s" } } : {}),
          },
        ]),
      ),
    };
    writeFileSync(join(dir, "standins.yml"), stringify(override));
    let t = Date.now();
    engine = startEngine();
    api = new DockerApi(engine.socket);
    console.log(`dev e2e: engine up in ${String(Date.now() - t)} ms`);
    t = Date.now();
    buildStandins(engine);
    console.log(`dev e2e: stand-ins ready in ${String(Date.now() - t)} ms`);
  }, 45 * 60_000);

  afterAll(() => {
    if (engine) {
      composeIn("down", "--volumes", "--timeout", "5");
      const stopped = stopEngine(engine.workdir);
      if (stopped.status !== 0) console.error(`e2e-env.sh down failed:\n${stopped.stderr}`);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 5 * 60_000);

  it("brings every service up healthy", async () => {
    const t = Date.now();
    const up = composeIn("up", "-d");
    expect(up.status, up.stderr).toBe(0);
    for (const name of services) await api.waitHealthy(`${project}_${name}_1`, 90_000);
    console.log(`dev e2e: ${String(services.length)} services healthy ${String(Date.now() - t)} ms after up`);
    const ps = composeIn("ps");
    expect(ps.status).toBe(0);
    for (const name of services)
      expect(ps.stdout).toMatch(new RegExp(`${project}_${name}_1 .*\\(healthy\\)`));
  });

  it("answers on 127.0.0.1's default ports: redis and the mongodb stand-in", async () => {
    const redis = await exchange(6379, Buffer.from("PING\r\n"), (b) => b.toString().includes("\r\n"));
    expect(redis.toString()).toBe("+PONG\r\n");
    const mongo = await exchange(27017, mongoPing(), (b) => b.length >= 4 && b.length >= b.readInt32LE(0));
    expect(mongo.readInt32LE(12), "opCode OP_MSG").toBe(2013);
  });

  it("resolves production-like names, short and under the search domain, on the services network", async () => {
    const info = await api.inspect(`${project}_redis-cache-1_1`);
    const resolv = run("docker", [
      "-H",
      engine?.host ?? "",
      "exec",
      `${project}_redis-cache-1_1`,
      "cat",
      "/etc/resolv.conf",
    ]);
    expect(resolv.stdout).toMatch(/search ci\.example\.internal/);
    // Ask the file's dnsmasq from the dnsmasq container itself (busybox nslookup), as the health check does.
    for (const name of ["mongodb-cluster-a-node-1", "mongodb-cluster-a-node-1.ci.example.internal"]) {
      const r = run("docker", [
        "-H",
        engine?.host ?? "",
        "exec",
        `${project}_dnsmasq_1`,
        "nslookup",
        name,
        "172.30.0.2",
      ]);
      expect(r.stdout, name).toContain("172.30.0.11");
    }
    expect(
      at(info, "NetworkSettings", "Networks", `${project}_ci-services`, "IPAMConfig", "IPv4Address"),
    ).toBe("172.30.0.21");
  });
});
