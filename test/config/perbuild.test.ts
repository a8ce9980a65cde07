/**
 * `berth:jenkins.perBuild`: defaults, resolution of the agent image, and the cross-field checks
 * (dockerd TLS required, host names known), reported with the rest of a stack's problems.
 */
import { cli, issuesOf } from "../support/cli.ts";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { loadStack } from "../../config/index.ts";
import { AGENT_IMAGE_TAG_ENV, gitRevision } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";

type Config = Record<string, Record<string, unknown>>;
const DIGEST = "sha256:" + "ab".repeat(32);

/** A project root with the shipped testing stack, edited by `edit`, saved as `stack`. */
const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function rootWith(edit: (c: Config) => void, stack = "testing"): string {
  const root = mkdtempSync(join(tmpdir(), "berth-perbuild-config-"));
  roots.push(root);
  mkdirSync(join(root, "stacks"));
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", "Pulumi.testing.yaml"), "utf8")) as {
    config: Config;
  };
  edit(doc.config);
  writeFileSync(join(root, "stacks", `Pulumi.${stack}.yaml`), stringify(doc));
  return root;
}

const perBuild = (c: Config, value: Record<string, unknown>) => {
  (c["berth:jenkins"] as Record<string, unknown>).perBuild = value;
};
const hosts = (c: Config) => c["berth:hosts"] as Record<string, unknown>;

const savedTag = process.env[AGENT_IMAGE_TAG_ENV];
afterEach(() => {
  if (savedTag === undefined) Reflect.deleteProperty(process.env, AGENT_IMAGE_TAG_ENV);
  else process.env[AGENT_IMAGE_TAG_ENV] = savedTag;
});

describe("defaults", () => {
  it("leaves per-build agents off, for every host, 4 per host, label docker-build, PULL_LATEST", () => {
    const c = loadStack(PROJECT_ROOT, "testing");
    expect(c.jenkins.perBuild).toMatchObject({
      enabled: false,
      hosts: c.hosts.names,
      instanceCap: 4,
      labels: ["docker-build"],
      imageSource: "registry",
      pullStrategy: "PULL_LATEST",
      dockerCredentialsId: "testing-dockerd-tls",
      registryCredentialsId: "testing-registry",
    });
  });

  it("is enabled on staging and production, on all their hosts", () => {
    for (const stack of ["staging", "production"]) {
      const c = loadStack(PROJECT_ROOT, stack, { agentImageTag: "rev1" });
      expect(c.jenkins.perBuild.enabled, stack).toBe(true);
      expect(c.jenkins.perBuild.hosts, stack).toEqual(c.hosts.names);
      expect(c.hosts.dockerTls, stack).toBe(true);
      expect(c.jenkins.perBuild.image).toBe(`${c.registry.hostname}/berth/jenkins-agent:rev1`);
    }
  });
});

describe("the agent image", () => {
  it('resolves "registry" to the stack registry\'s berth/jenkins-agent at the git revision', () => {
    Reflect.deleteProperty(process.env, AGENT_IMAGE_TAG_ENV);
    const rev = gitRevision();
    expect(rev).toMatch(/^[0-9a-f]{40}$/);
    const c = loadStack(PROJECT_ROOT, "staging");
    expect(c.jenkins.perBuild.image).toBe(`registry.staging.ci.example.com/berth/jenkins-agent:${rev}`);
  });

  it("takes the tag from BERTH_AGENT_IMAGE_TAG, and the option over both", () => {
    process.env[AGENT_IMAGE_TAG_ENV] = "from-env";
    expect(loadStack(PROJECT_ROOT, "staging").jenkins.perBuild.image).toMatch(/:from-env$/);
    expect(loadStack(PROJECT_ROOT, "staging", { agentImageTag: "opt" }).jenkins.perBuild.image).toMatch(
      /:opt$/,
    );
  });

  it("refuses a tag that is not an image tag", () => {
    const issues = issuesOf(() => loadStack(PROJECT_ROOT, "staging", { agentImageTag: "no/slash" }));
    expect(issues).toEqual([
      { path: "berth:jenkins.perBuild.image", message: expect.stringContaining("not a valid image tag") },
    ]);
  });

  it("keeps a digest-pinned image as given", () => {
    const image = `registry.example.com/ci/agent:1@${DIGEST}`;
    const root = rootWith((c) => perBuild(c, { enabled: true, image }));
    expect(loadStack(root, "testing").jenkins.perBuild).toMatchObject({ image, imageSource: "pinned" });
  });

  it('refuses an image that is neither "registry" nor pinned by digest, naming the key', () => {
    const root = rootWith((c) => perBuild(c, { enabled: true, image: "debian:bookworm" }));
    const issues = issuesOf(() => loadStack(root, "testing"));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe("berth:jenkins.perBuild.image");
    expect(issues[0]?.message).toMatch(/must be "registry" .* pinned by digest.*got "debian:bookworm"/);
  });
});

describe("checks", () => {
  it("perBuild.enabled without hosts.dockerTls is an error naming both fields", () => {
    const root = rootWith((c) => {
      hosts(c).dockerTls = false;
      perBuild(c, { enabled: true });
    });
    const issues = issuesOf(() => loadStack(root, "testing"));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe("berth:jenkins.perBuild.enabled");
    expect(issues[0]?.message).toContain("berth:hosts.dockerTls");
  });

  it("accepts dockerTls off while per-build agents are off", () => {
    const root = rootWith((c) => {
      hosts(c).dockerTls = false;
      perBuild(c, { enabled: false });
    });
    expect(loadStack(root, "testing").jenkins.perBuild.enabled).toBe(false);
  });

  it("names each unknown host in perBuild.hosts, with the stack's real host names", () => {
    const root = rootWith((c) => {
      hosts(c).count = 2;
      perBuild(c, { enabled: true, hosts: ["testing-ci-2", "testing-ci-9", "staging-ci-1"] });
    });
    const issues = issuesOf(() => loadStack(root, "testing"));
    expect(issues.map((i) => i.path)).toEqual([
      "berth:jenkins.perBuild.hosts[1]",
      "berth:jenkins.perBuild.hosts[2]",
    ]);
    expect(issues[0]?.message).toBe(
      '"testing-ci-9" is not a host of stack testing; its hosts are testing-ci-1, testing-ci-2',
    );
    expect(issues[1]?.message).toContain('"staging-ci-1"');
  });

  it("reports per-build problems together with schema problems", () => {
    const root = rootWith((c) => {
      hosts(c).dockerTls = false;
      hosts(c).count = 0;
      perBuild(c, { enabled: true, instanceCap: 0, pullStrategy: "SOMETIMES", labels: [] });
    });
    const paths = issuesOf(() => loadStack(root, "testing")).map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "berth:hosts.count",
        "berth:jenkins.perBuild.enabled",
        "berth:jenkins.perBuild.instanceCap",
        "berth:jenkins.perBuild.labels",
        "berth:jenkins.perBuild.pullStrategy",
      ]),
    );
  });

  it("refuses unknown keys and repeated hosts", () => {
    const root = rootWith((c) =>
      perBuild(c, { enabled: true, hosts: ["testing-ci-1", "testing-ci-1"], cap: 3 }),
    );
    const paths = issuesOf(() => loadStack(root, "testing")).map((i) => i.path);
    expect(paths).toEqual(["berth:jenkins.perBuild.cap", "berth:jenkins.perBuild.hosts"]);
  });
});

describe("resolution", () => {
  it("keeps the listed hosts in the stack's order, with the given caps, labels and strategy", () => {
    const root = rootWith((c) => {
      hosts(c).count = 3;
      perBuild(c, {
        enabled: true,
        hosts: ["testing-ci-3", "testing-ci-1"],
        instanceCap: 7,
        labels: ["a", "b"],
        pullStrategy: "PULL_NEVER",
        credentialsIdPrefix: "berth-test",
      });
    });
    expect(loadStack(root, "testing", { agentImageTag: "t" }).jenkins.perBuild).toEqual({
      enabled: true,
      hosts: ["testing-ci-1", "testing-ci-3"],
      instanceCap: 7,
      labels: ["a", "b"],
      image: "registry.testing.ci.example.com/berth/jenkins-agent:t",
      imageSource: "registry",
      pullStrategy: "PULL_NEVER",
      dockerCredentialsId: "berth-test-dockerd-tls",
      registryCredentialsId: "berth-test-registry",
    });
  });

  it("a pr-<N> stack derived from testing drops testing's host list (its hosts have other names)", () => {
    const root = rootWith((c) => perBuild(c, { enabled: true, hosts: ["testing-ci-1"] }));
    const pr = loadStack(root, "pr-5", { agentImageTag: "t" });
    expect(pr.jenkins.perBuild.enabled).toBe(true);
    expect(pr.jenkins.perBuild.hosts).toEqual(["pr-5-ci-1"]);
  });
});

describe("cli", () => {
  it("berth validate prints the dockerTls error and exits 1", async () => {
    const root = rootWith((c) => {
      hosts(c).dockerTls = false;
      perBuild(c, { enabled: true });
    });
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/berth:jenkins\.perBuild\.enabled: .*berth:hosts\.dockerTls/);
  });

  it("berth jenkins-casc refuses a bad stack with the same message", async () => {
    const root = rootWith((c) => perBuild(c, { enabled: true, hosts: ["nope"] }));
    const r = await cli(root, "jenkins-casc", "testing");
    expect(r.code).toBe(1);
    expect(r.err).toContain('berth:jenkins.perBuild.hosts[0]: "nope" is not a host of stack testing');
  });
});
