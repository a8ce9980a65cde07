import { cli } from "../support/cli.ts";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";
import { buildPlan, MASK, renderPlanJson, type Plan } from "../../plan/plan.ts";
import { diffPlans, renderDiffMarkdown } from "../../plan/diff.ts";
import { runStack } from "../../plan/run.ts";
import { mockId } from "../../plan/mocks.ts";
import { editedStackRoot } from "../support/stacks.ts";

const tmp = mkdtempSync(join(tmpdir(), "berth-plan-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("berth plan", () => {
  let plan: Plan;
  beforeAll(async () => {
    const r = await cli(PROJECT_ROOT, "plan", "production", "--out", join(tmp, "a"));
    expect(r.code, r.err).toBe(0);
    plan = JSON.parse(readFileSync(join(tmp, "a", "plan.json"), "utf8")) as Plan;
  });

  it("writes plan.md, plan.json and the hosts' Ignition", () => {
    const md = readFileSync(join(tmp, "a", "plan.md"), "utf8");
    for (const h of ["production-ci-1", "production-ci-2", "production-ci-3"]) {
      expect(md).toContain(`| ${h} |`);
      expect(readFileSync(join(tmp, "a", "hosts", `${h}.ign`), "utf8")).toMatch(
        /^\{"ignition":\{"version":"3\.3\.0"\}/,
      );
    }
    for (const section of [
      "## Hosts",
      "## Containers per host",
      "## Networks",
      "## Volumes",
      "## Security rules",
      "## Exposed ports",
      "```mermaid",
    ])
      expect(md).toContain(section);
  });

  it("lists each host's containers with their pinned images, ports and networks", async () => {
    const cfg = (await runStack(PROJECT_ROOT, "production")).config;
    const h1 = plan.hosts.find((h) => h.name === "production-ci-1")!;
    const names = h1.containers.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining(["registry", "registry-nginx", "dnsmasq", "jenkins-agent-1"]),
    );
    expect(h1.containers.filter((c) => c.name.startsWith("jenkins-agent-"))).toHaveLength(
      cfg.jenkins.agentsPerHost,
    );
    for (const c of h1.containers) expect(c.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(h1.containers.find((c) => c.name === "registry-nginx")?.ports).toEqual([
      "10.42.30.11:443->443/tcp",
      "10.42.30.11:8443->8443/tcp",
      "10.42.30.11:5001->5001/tcp",
    ]);
    expect(plan.hosts.find((h) => h.name === "production-ci-2")!.containers.map((c) => c.name)).not.toContain(
      "registry",
    );
    const md = readFileSync(join(tmp, "a", "plan.md"), "utf8");
    expect(md).toContain(`| registry | \`${cfg.registry.image}\` |`);
  });

  it("lists every registered resource with type, name, parent and inputs", async () => {
    const run = await runStack(PROJECT_ROOT, "production");
    expect(plan.resources.map((r) => r.urn).sort()).toEqual(run.resources.map((r) => r.urn).sort());
    const server = plan.resources.find((r) => r.name === "production-ci-1-server")!;
    expect(server.type).toBe("openstack:compute/instance:Instance");
    expect(server.parent).toMatch(/berth:host:CiHost::production-ci-1$/);
    expect((server.inputs as Record<string, unknown>).flavorName).toBe("m1.2xlarge");
    const volume = plan.resources.find((r) => r.name === "production-ci-1-docker")!;
    expect(volume.protect).toBe(true);
  });

  it("masks every secret: no private key or user data text in plan.json", async () => {
    const json = readFileSync(join(tmp, "a", "plan.json"), "utf8");
    const server = plan.resources.find((r) => r.name === "production-ci-1-server")!;
    expect((server.inputs as Record<string, unknown>).userData).toBe(MASK);
    expect(server.secretInputs).toContain("userData");
    const run = await runStack(PROJECT_ROOT, "production");
    for (const k of run.resources.filter((r) => r.type === "tls:index/privateKey:PrivateKey"))
      expect(json).not.toContain(String(k.state.privateKeyPem).split("\n")[1]);
    expect(json).not.toContain("BEGIN PRIVATE KEY");
  });

  it("is deterministic: the same commit gives the same bytes", async () => {
    const r = await cli(PROJECT_ROOT, "plan", "production", "--out", join(tmp, "b"));
    expect(r.code).toBe(0);
    for (const f of ["plan.json", "plan.md", "hosts/production-ci-2.ign"])
      expect(readFileSync(join(tmp, "b", f), "utf8")).toBe(readFileSync(join(tmp, "a", f), "utf8"));
  });
});

describe("plan diff", () => {
  it("reports added, changed (update or replace) and removed resources", async () => {
    const base = buildPlan(await runStack(PROJECT_ROOT, "testing"));
    const head = structuredClone(base);
    head.resources = head.resources.filter((r) => r.name !== "testing-ci-icmp-internal");
    head.resources.push({ ...head.resources[0]!, urn: "urn:new", name: "new-thing" });
    const vol = head.resources.find((r) => r.name === "testing-ci-1-docker")!;
    (vol.inputs as Record<string, unknown>).size = 999;
    head.hosts[0]!.userDataDigest = "0000000000000000";
    const d = diffPlans(base, head);
    expect(d.added.map((r) => r.name)).toEqual(["new-thing"]);
    expect(d.removed.map((r) => r.name)).toEqual(["testing-ci-icmp-internal"]);
    expect(d.changed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "testing-ci-1-docker", fields: ["size"], replace: false }),
        expect.objectContaining({ name: "testing-ci-1-server", fields: ["userData"], replace: true }),
      ]),
    );
    expect(d.replacedHosts).toEqual(["testing-ci-1"]);
    const md = renderDiffMarkdown(d, "main");
    expect(md).toContain("**1 server will be replaced**: `testing-ci-1`");
    expect(renderDiffMarkdown(diffPlans(base, base), "main")).toContain("No changes.");
  });
});

describe("plan diff when hosts.storageDriver changes", () => {
  const driverRoot = (driver: string, protectData = false) =>
    editedStackRoot((c) => {
      const hosts = c["berth:hosts"] as Record<string, unknown>;
      hosts.storageDriver = driver;
      hosts.protectData = protectData;
    });

  it("btrfs → overlay2: the server is replaced and its Docker volume deleted and created anew", async () => {
    const base = buildPlan(await runStack(PROJECT_ROOT, "testing"));
    const head = buildPlan(await runStack(driverRoot("overlay2"), "testing"));
    const d = diffPlans(base, head);
    expect(d.removed.map((r) => r.name)).toEqual(["testing-ci-1-docker"]);
    expect(d.added.map((r) => r.name)).toEqual(["testing-ci-1-docker-ext4"]);
    expect(d.replacedHosts).toEqual(["testing-ci-1"]);
    expect(d.lostDockerVolumes).toEqual([
      { host: "testing-ci-1", volume: "testing-ci-1-docker", protect: false },
    ]);
    // The new server boots with the new volume attached (a fresh ext4 file system), not the old one.
    const devices = (i: Plan) =>
      JSON.stringify(
        (i.resources.find((r) => r.name === "testing-ci-1-server")!.inputs as Record<string, unknown>)
          .blockDevices,
      );
    const VOLUME = "openstack:blockstorage/volume:Volume";
    expect(devices(base)).toContain(mockId(VOLUME, "testing-ci-1-docker"));
    expect(devices(head)).toContain(mockId(VOLUME, "testing-ci-1-docker-ext4"));
    expect(devices(head)).not.toContain(mockId(VOLUME, "testing-ci-1-docker"));
    const md = renderDiffMarkdown(d, "main");
    expect(md).toContain("**1 server will be replaced**: `testing-ci-1`");
    expect(md).not.toContain("the docker volumes are kept");
    expect(md).toContain("**1 Docker volume will be deleted**: `testing-ci-1-docker`");
    expect(md).toContain("Everything Docker kept there is lost");
    expect(md).not.toContain("protected");
  });

  it("overlay2 → btrfs on a protected stack: says pulumi up refuses until protectData is false", async () => {
    const base = buildPlan(await runStack(driverRoot("overlay2", true), "testing"));
    const head = buildPlan(await runStack(driverRoot("btrfs", true), "testing"));
    const d = diffPlans(base, head);
    expect(d.lostDockerVolumes).toEqual([
      { host: "testing-ci-1", volume: "testing-ci-1-docker-ext4", protect: true },
    ]);
    expect(renderDiffMarkdown(d, "main")).toContain(
      "`testing-ci-1-docker-ext4` is protected (`hosts.protectData`): `pulumi up` refuses to delete it",
    );
  });

  it("the same driver named explicitly changes nothing", async () => {
    const base = buildPlan(await runStack(PROJECT_ROOT, "testing"));
    const head = buildPlan(await runStack(driverRoot("btrfs"), "testing"));
    expect(renderDiffMarkdown(diffPlans(base, head), "main")).toContain("No changes.");
  });
});

describe("plan diff of secret inputs", () => {
  it("reports a secret that changed by its digest, and says when the base plan has no digests", async () => {
    const run = await runStack(PROJECT_ROOT, "testing");
    const base = buildPlan(run, { secretDigestKey: "k" });
    expect(renderDiffMarkdown(diffPlans(base, base), "main")).toContain("No changes.");
    const head = structuredClone(base);
    const nginx = head.resources.find((r) => r.name === "testing-ci-1-registry-nginx")!;
    expect(nginx.secretInputs).toContain("uploads");
    nginx.secretDigests!.uploads = "0".repeat(64);
    const d = diffPlans(base, head);
    expect(d.changed).toEqual([
      expect.objectContaining({
        name: nginx.name,
        fields: ["uploads"],
        secretFields: ["uploads"],
        replace: true,
      }),
    ]);
    expect(renderDiffMarkdown(d, "main")).toContain("`testing-ci-1-registry-nginx` (uploads)");
    // Without a key, no digests: what plan.json holds for reviewers.
    expect(buildPlan(run).resources.every((r) => r.secretDigests === undefined)).toBe(true);
    const old = buildPlan(run);
    const md = renderDiffMarkdown(diffPlans(old, base), "v1");
    expect(md).toContain("No changes.");
    expect(md).toContain("Secret inputs were not compared");
  });
});

describe("berth plan --against <ref>", () => {
  const repo = join(tmp, "repo");
  const git = (...args: string[]) => {
    const r = spawnSync("git", ["-C", repo, ...args], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };
  const edit = (stack: string, from: RegExp, to: string) => {
    const f = join(repo, "stacks", `Pulumi.${stack}.yaml`);
    const text = readFileSync(f, "utf8");
    expect(text).toMatch(from);
    writeFileSync(f, text.replace(from, to));
  };

  /** The clone's own `berth` (its committed code on both sides of the comparison). */
  const berth = (...argv: string[]) => {
    const r = spawnSync(process.execPath, [join(repo, "bin", "berth.js"), ...argv], {
      cwd: repo,
      encoding: "utf8",
    });
    return { code: r.status, out: r.stdout.trimEnd(), err: r.stderr };
  };

  beforeAll(() => {
    // A throwaway clone of the committed project, so the test can commit changes of its own.
    const r = spawnSync("git", ["clone", "--quiet", PROJECT_ROOT, repo], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    symlinkSync(join(PROJECT_ROOT, "node_modules"), join(repo, "node_modules"), "dir");
    git("config", "user.email", "test@example.com");
    git("config", "user.name", "test");
  });

  it("a service-layer change replaces no server; a host-layer change does, and says so", async () => {
    edit("staging", /agentsPerHost: 3/, "agentsPerHost: 5");
    git("commit", "-qam", "more agents");
    const service = berth("plan", "staging", "--against", "HEAD~1", "--out", join(tmp, "s"));
    expect(service.code, service.err).toBe(0);
    // The agents rule is named by its ports: the old one goes, the new one comes.
    expect(service.out).toContain("staging-ci-jenkins-agents-2201-2205-from-198.51.100.40-32");
    expect(service.out).toContain("staging-ci-jenkins-agents-2201-2203-from-198.51.100.40-32");
    expect(service.out).not.toContain("will be replaced");

    edit("staging", /timezone: Europe\/Rome/, "timezone: UTC");
    git("commit", "-qam", "UTC");
    const host = berth("plan", "staging", "--against", "HEAD~1", "--out", join(tmp, "h"));
    expect(host.code, host.err).toBe(0);
    expect(host.out).toContain("**2 servers will be replaced**: `staging-ci-1`, `staging-ci-2`");
    expect(readFileSync(join(tmp, "h", "diff.md"), "utf8").trimEnd()).toBe(host.out);
    // The worktree used for the base plan is gone again.
    expect(git("worktree", "list").trim().split("\n")).toHaveLength(1);
  }, 300_000);

  it("a change of a secret only (a registry password) is reported as such, without the secret", () => {
    const first = "first-registry-password-7f3a9c";
    const second = "second-registry-password-2b8e41";
    edit("testing", /- name: jenkins\n/, `- name: jenkins\n        password: ${first}\n`);
    git("commit", "-qam", "a provided registry password");
    try {
      // Nothing changed yet: the digests of unchanged secrets agree between the two runs.
      const same = berth("plan", "testing", "--against", "HEAD", "--out", join(tmp, "same"));
      expect(same.code, same.err).toBe(0);
      expect(same.out).toContain("No changes.");

      edit("testing", new RegExp(`password: ${first}`), `password: ${second}`);
      const r = berth("plan", "testing", "--against", "HEAD", "--out", join(tmp, "secret"));
      expect(r.code, r.err).toBe(0);
      expect(r.out).not.toContain("No changes.");
      expect(r.out).toMatch(
        /\*\*Secret inputs changed\*\* \(values not shown\): .*`testing-ci-1-registry-nginx` \(uploads\)/,
      );
      expect(r.out).toMatch(
        /\| docker:Container \| testing-ci-1-registry-nginx \| uploads \(secret\) \| \*\*replace\*\* \|/,
      );
      for (const text of [r.out, readFileSync(join(tmp, "secret", "plan.json"), "utf8")]) {
        expect(text).not.toContain(first);
        expect(text).not.toContain(second);
        // The one-comparison digests are not written out either.
        expect(text).not.toContain("secretDigests");
      }
    } finally {
      git("checkout", "--", "stacks");
      git("reset", "-q", "--hard", "HEAD~1");
    }
  }, 180_000);

  it("an unknown ref is a clear error, not a stack trace", async () => {
    const r = berth("plan", "staging", "--against", "no-such-ref", "--out", join(tmp, "x"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("git rev-parse");
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("a configuration error in the working tree stops the ref's plan and removes its worktree", () => {
    edit("staging", /agentsPerHost: \d+/, "agentsPerHost: lots");
    try {
      const r = berth("plan", "staging", "--against", "HEAD", "--out", join(tmp, "bad"));
      expect(r.code).toBe(1);
      expect(r.err).toContain("berth:jenkins.agentsPerHost");
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(git("worktree", "list").trim().split("\n")).toHaveLength(1);
      expect(spawnSync("git", ["-C", repo, "worktree", "prune", "-n", "-v"]).stdout.toString()).toBe("");
    } finally {
      git("checkout", "--", "stacks");
    }
  }, 300_000);
});

describe("plan.json rendering", () => {
  it("ends with a newline and is stable JSON", async () => {
    const p = buildPlan(await runStack(PROJECT_ROOT, "pr-17"));
    const text = renderPlanJson(p);
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(p)));
  });
});
