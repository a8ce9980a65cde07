import { cli, issuesOf } from "../support/cli.ts";
import { describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";

type Doc = { config: Record<string, Record<string, unknown>> };

/** A project root holding a copy of the shipped testing stack, edited by `edit`. */
function rootWith(edit: (c: Doc["config"]) => void, stack = "testing"): string {
  const root = mkdtempSync(join(tmpdir(), "berth-config-"));
  mkdirSync(join(root, "stacks"));
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", "Pulumi.testing.yaml"), "utf8")) as Doc;
  edit(doc.config);
  writeFileSync(join(root, "stacks", `Pulumi.${stack}.yaml`), stringify(doc));
  return root;
}

describe("shipped stacks", () => {
  it.each(["testing", "staging", "production", "pr-17"])("berth validate %s passes", async (stack) => {
    const r = await cli(PROJECT_ROOT, "validate", stack);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`stack ${stack}`);
  });

  it("gives the environments distinct, growing footprints", () => {
    const [t, s, p] = ["testing", "staging", "production"].map((n) => loadStack(PROJECT_ROOT, n));
    expect([t?.hosts.count, s?.hosts.count, p?.hosts.count]).toEqual([1, 2, 3]);
    expect(p!.hosts.dockerVolumeSize).toBeGreaterThan(s!.hosts.dockerVolumeSize);
    expect(s!.hosts.dockerVolumeSize).toBeGreaterThan(t!.hosts.dockerVolumeSize);
    expect([t?.hosts.protectData, s?.hosts.protectData, p?.hosts.protectData]).toEqual([false, false, true]);
    expect(new Set([t, s, p].map((c) => c!.openstack.networkCidr)).size).toBe(3);
  });

  it("derives pr-<N> from testing, smaller and with a time-to-live label", () => {
    const t = loadStack(PROJECT_ROOT, "testing");
    const pr = loadStack(PROJECT_ROOT, "pr-17");
    expect(pr.environment).toBe("preview");
    expect(pr.preview).toEqual({ pr: 17, ttlHours: 72 });
    expect(pr.labels).toMatchObject({ "berth-pr": "17", "berth-ttl-hours": "72", "berth-stack": "pr-17" });
    expect(pr.hosts.count).toBe(1);
    expect(pr.hosts.names).toEqual(["pr-17-ci-1"]);
    expect(pr.hosts.dockerVolumeSize).toBeLessThan(t.hosts.dockerVolumeSize);
    expect(pr.jenkins.agentsPerHost).toBeLessThanOrEqual(t.jenkins.agentsPerHost);
    expect(pr.hosts.protectData).toBe(false);
    expect(pr.registry.hostname).toBe(t.registry.hostname);
  });

  it("applies defaults and derives names and addresses", () => {
    const c = loadStack(PROJECT_ROOT, "staging");
    expect(c.hosts.names).toEqual(["staging-ci-1", "staging-ci-2"]);
    expect(c.hosts.addresses).toEqual(["10.42.20.11", "10.42.20.12"]);
    expect(c.registry.host).toBe("staging-ci-1");
    expect(c.registry.address).toBe("10.42.20.11");
    expect(c.openstack.floatingIpPool).toBe("public");
    expect(c.openstack.allowWorld).toBe(false);
    expect(c.services.dnsAddress).toBe("172.30.0.2");
    expect(c.services.gateway).toBe("172.30.0.1");
    expect(c.jenkins.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(c.registry.users.every((u) => u.password === undefined)).toBe(true);
  });

  it("rejects a stack name that has no file and is not a preview", async () => {
    const r = await cli(PROJECT_ROOT, "validate", "qa");
    expect(r.code).toBe(1);
    expect(r.err).toContain("stacks/Pulumi.qa.yaml");
  });
});

describe("bad input: one message naming every bad field", () => {
  it("wrong type", async () => {
    const root = rootWith((c) => {
      c["berth:hosts"]!.count = "three";
    });
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toContain('berth:hosts.count: must be integer, got a string "three"');
    expect(r.out).toBe("");
  });

  it("missing required key", async () => {
    const root = rootWith((c) => {
      delete c["berth:registry"]!.hostname;
      delete c["berth:dns"];
    });
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toContain("berth:registry.hostname: missing required key (a DNS name");
    expect(r.err).toContain("berth:dns: missing required key");
  });

  it("unknown key, with the likely intended name", async () => {
    const root = rootWith((c) => {
      c["berth:jenkins"]!.agentsPerhost = 3;
      c["berth:hostz"] = { count: 1 };
    });
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toContain('berth:jenkins.agentsPerhost: unknown key; did you mean "agentsPerHost"?');
    expect(r.err).toContain('berth:hostz: unknown key; did you mean "hosts"?');
  });

  it("impossible values: zero hosts, invalid CIDRs, a key that is not an SSH key", () => {
    const root = rootWith((c) => {
      c["berth:hosts"]!.count = 0;
      c["berth:openstack"]!.adminCidrs = ["10.0.0.0/33", "10.0.0.1/24", "not-a-cidr"];
      c["berth:jenkins"]!.agentPublicKey = "ssh-ed25519 AAAAC3NzaC1yc2EAAAADAQABAAABAQ== mismatched";
      c["berth:hosts"]!.sshKeys = ["-----BEGIN OPENSSH PRIVATE KEY-----"];
    });
    const issues = issuesOf(() => loadStack(root, "testing"));
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "berth:hosts.count",
        "berth:openstack.adminCidrs[0]",
        "berth:openstack.adminCidrs[1]",
        "berth:openstack.adminCidrs[2]",
        "berth:jenkins.agentPublicKey",
        "berth:hosts.sshKeys[0]",
      ]),
    );
    expect(issues.find((i) => i.path === "berth:hosts.count")?.message).toBe("must be >= 1, got 0");
    expect(issues.find((i) => i.path === "berth:openstack.adminCidrs[1]")?.message).toContain(
      "no host bits set",
    );
  });

  it("reports every problem at once, sorted, with the fix, and no stack trace", async () => {
    const root = rootWith((c) => {
      c["berth:hosts"]!.count = 0;
      c["berth:hosts"]!.flavor = 4;
      c["berth:jenkins"]!.agentsPerhost = 1;
      delete c["berth:registry"]!.hostname;
    });
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    const lines = r.err.split("\n");
    expect(lines[0]).toBe(
      'Invalid Berth configuration for stack "testing" (stacks/Pulumi.testing.yaml): 4 problems',
    );
    expect(lines.slice(1, 5).map((l) => l.split(":").slice(0, 2).join(":"))).toEqual([
      "  - berth:hosts.count",
      "  - berth:hosts.flavor",
      "  - berth:jenkins.agentsPerhost",
      "  - berth:registry.hostname",
    ]);
    expect(lines.at(-1)).toContain("berth validate testing");
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("semantic checks: world-open rules, addresses outside the services subnet, duplicates", () => {
    const root = rootWith((c) => {
      c["berth:jenkins"]!.controllerCidr = "0.0.0.0/0";
      const s = c["berth:services"]!;
      s.productionLike = [
        { name: "mongodb-cluster-a-node-1", kind: "mongodb", address: "172.31.0.5" },
        { name: "mongodb-cluster-a-node-1", kind: "mongodb", address: "172.30.0.2" },
      ];
      c["berth:registry"]!.users = [{ name: "ci" }, { name: "ci" }];
    });
    const issues = issuesOf(() => loadStack(root, "testing"));
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(byPath["berth:jenkins.controllerCidr"]).toContain("allowWorld");
    expect(byPath["berth:services.productionLike[0].address"]).toContain("outside berth:services.subnet");
    expect(byPath["berth:services.productionLike[1].name"]).toContain("repeats");
    expect(byPath["berth:services.productionLike[1].address"]).toContain("dnsmasq");
    expect(byPath["berth:registry.users[1].name"]).toContain("repeats");
  });

  it("allowWorld is an explicit opt-in", () => {
    const root = rootWith((c) => {
      c["berth:openstack"]!.adminCidrs = ["0.0.0.0/0"];
      c["berth:openstack"]!.allowWorld = true;
    });
    expect(loadStack(root, "testing").openstack.adminCidrs).toEqual(["0.0.0.0/0"]);
  });

  it("secrets may be given as Pulumi secure values", () => {
    const root = rootWith((c) => {
      c["berth:registry"]!.users = [
        { name: "ci", password: { secure: "v1:abc" } },
        { name: "dev", password: "pw" },
      ];
    });
    const c = loadStack(root, "testing");
    expect(c.registry.users).toEqual([
      { name: "ci", password: { kind: "encrypted", ciphertext: "v1:abc" } },
      { name: "dev", password: { kind: "plain", value: "pw" } },
    ]);
  });

  it("a derived preview stack is validated too, naming its source", async () => {
    const root = rootWith((c) => {
      c["berth:hosts"]!.flavor = "";
    });
    const r = await cli(root, "validate", "pr-3");
    expect(r.code).toBe(1);
    expect(r.err).toContain("stacks/Pulumi.testing.yaml, derived for pr-3");
    expect(r.err).toContain("berth:hosts.flavor: must not be empty");
  });

  it("invalid YAML is reported, not thrown", async () => {
    const root = rootWith(() => {});
    writeFileSync(join(root, "stacks", "Pulumi.testing.yaml"), "config:\n  berth:hosts: [\n");
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toContain("is not valid YAML");
  });
});

describe("cli", () => {
  it("prints usage and exits 2 on unknown commands", async () => {
    const r = await cli(PROJECT_ROOT, "frobnicate");
    expect(r.code).toBe(2);
    expect(r.err).toContain("Usage:");
  });
});
