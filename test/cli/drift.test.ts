/**
 * `berth drift` without an engine: what the program declares per host, argument checks (exit 2),
 * a host that cannot be read (exit 1), endpoints. The comparison itself runs against a real dockerd
 * in test/e2e/drift.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";
import { parseEngineUrl } from "../../cli/engine.ts";
import { EXIT_ERROR, EXIT_USAGE } from "../../cli/drift.ts";
import { declaredHosts, type DeclaredHost } from "../../plan/declared.ts";
import { runStack } from "../../plan/run.ts";
import { cli } from "../support/cli.ts";

describe("what the program declares per host (plan/declared.ts)", () => {
  let staging: Map<string, DeclaredHost>;
  beforeAll(async () => {
    staging = declaredHosts(await runStack(PROJECT_ROOT, "staging"));
  }, 120_000);

  it("has every host, with its containers, networks and volumes", () => {
    expect([...staging.keys()]).toEqual(["staging-ci-1", "staging-ci-2"]);
    const h1 = staging.get("staging-ci-1")!;
    const h2 = staging.get("staging-ci-2")!;
    expect(h1.networks.map((n) => n.name).sort()).toEqual(["berth-registry", "ci-services"]);
    expect(h2.networks.map((n) => n.name)).toEqual(["ci-services"]);
    expect(h1.containers.map((c) => c.name)).toContain("registry-nginx");
    expect(h2.containers.map((c) => c.name)).not.toContain("registry");
    expect(h1.volumes.map((v) => v.name)).toContain("registry-data");
    for (const [host, h] of staging)
      for (const r of [...h.containers, ...h.networks, ...h.volumes])
        expect(r.labels, r.name).toMatchObject({ "org.berth.stack": "staging", "org.berth.host": host });
  });

  it("reads the settings drift compares, secret environment values by name only", () => {
    const h1 = staging.get("staging-ci-1")!;
    const agent = h1.containers.find((c) => c.name === "jenkins-agent-1")!;
    expect(agent.image).toMatch(/^jenkins\/ssh-agent:[^@]+@sha256:[0-9a-f]{64}$/);
    expect(agent.restart).toBe("unless-stopped");
    expect(agent.networks).toEqual(["bridge", "ci-services"]);
    expect(agent.mounts).toEqual(["volume:jenkins-agent-1-work:/home/jenkins/agent"]);
    expect(agent.ports).toHaveLength(1);
    expect(agent.ports[0]).toMatch(/^\d+\.\d+\.\d+\.\d+:\d+->22\/tcp$/);
    const dns = h1.containers.find((c) => c.name === "dnsmasq")!;
    expect(dns.networks).toEqual([expect.stringMatching(/^ci-services@\d+\.\d+\.\d+\.\d+$/)]);
    const postgres = h1.containers.find((c) => c.name === "postgres")!;
    expect(postgres.secretEnvNames).toEqual(["POSTGRES_PASSWORD", "POSTGRES_USER"]);
    expect(postgres.env).toEqual([]);
  });
});

describe("berth drift", () => {
  let scratch = "";
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), "berth-drift-"));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("refuses bad arguments in one message, exit 2", async () => {
    const r = await cli(
      PROJECT_ROOT,
      "drift",
      "testing",
      "--docker-host",
      "nohost",
      "--grace-minutes",
      "1.5",
      "--now",
      "yesterday",
      "--prune-volumes",
      "--jenkins-nodes",
      join(scratch, "nodes"),
    );
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toBe(
      [
        'berth drift: --docker-host "nohost": use <host>=<url>, e.g. testing-ci-1=unix:///run/docker.sock',
        '  --grace-minutes must be a whole number of minutes (got "1.5")',
        '  --now must be an ISO 8601 time (got "yesterday")',
        "  --prune-volumes only goes with --prune",
        "  --jenkins-nodes needs --jenkins-id (or BERTH_JENKINS_ID): only this controller's containers are judged",
        `  --jenkins-nodes ${join(scratch, "nodes")}: ENOENT: no such file or directory, open '${join(scratch, "nodes")}'`,
      ].join("\n"),
    );
  });

  it("refuses a --docker-host that is not a host of the stack, exit 2", async () => {
    const r = await cli(PROJECT_ROOT, "drift", "testing", "--docker-host", "staging-ci-1=unix:///x.sock");
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toBe(
      "berth drift: --docker-host names staging-ci-1, not a host of testing (its hosts: testing-ci-1)",
    );
  }, 60_000);

  it("reports a host it cannot read as an error, exit 1", async () => {
    const sock = join(scratch, "none.sock");
    const r = await cli(PROJECT_ROOT, "drift", "testing", "--docker-host", `testing-ci-1=unix://${sock}`);
    expect(r.code).toBe(EXIT_ERROR);
    const lines = r.out.split("\n");
    expect(lines[0]).toBe("berth drift testing");
    expect(lines[1]).toBe(`testing-ci-1 (unix://${sock}):`);
    expect(lines[2]).toMatch(
      new RegExp(`^  error: unix://${sock}: GET /containers/\\S+/json: connect ENOENT`),
    );
    expect(lines.at(-1)).toBe("error (exit 1)");
  }, 60_000);

  it("reads the endpoints the provider uses, and refuses others", () => {
    expect(parseEngineUrl("ssh://core@203.0.113.10")).toEqual({ kind: "ssh", target: "core@203.0.113.10" });
    expect(parseEngineUrl("tcp://203.0.113.10:2376")).toEqual({
      kind: "tcp",
      host: "203.0.113.10",
      port: 2376,
    });
    expect(parseEngineUrl("unix:///run/docker.sock")).toEqual({ kind: "unix", path: "/run/docker.sock" });
    expect(() => parseEngineUrl("http://x")).toThrow(/is not a Docker endpoint/);
  });
});
