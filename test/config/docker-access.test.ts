/**
 * `berth:jenkins.dockerAccess`: how jobs reach Docker, per agent kind. Validation refuses `tls`
 * without dockerd's TLS endpoint and the key it replaced, with one ConfigError naming the fields,
 * before anything is registered; `berth validate` says when access is root on the hosts.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli, issuesOf } from "../support/cli.ts";
import { editedStackRoot, type StackConfigMap } from "../support/stacks.ts";
import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";

const TAG = { agentImageTag: "rev1" };
const jenkins = (c: StackConfigMap) => c["berth:jenkins"] as Record<string, unknown>;
const hosts = (c: StackConfigMap) => c["berth:hosts"] as Record<string, unknown>;

describe("berth:jenkins.dockerAccess", () => {
  it("defaults to none for both agent kinds", () => {
    for (const stack of ["testing", "staging", "production"])
      expect(loadStack(PROJECT_ROOT, stack, TAG).jenkins.dockerAccess).toEqual({
        static: "none",
        perBuild: "none",
      });
  });

  it("accepts socket and tls per kind", () => {
    const root = editedStackRoot((c) => {
      jenkins(c).dockerAccess = { static: "socket", perBuild: "tls" };
    });
    expect(loadStack(root, "testing", TAG).jenkins.dockerAccess).toEqual({
      static: "socket",
      perBuild: "tls",
    });
  });

  it("refuses tls without dockerd's TLS endpoint, an unknown mode, and the old dockerSocket key, all at once", () => {
    const root = editedStackRoot((c) => {
      hosts(c).dockerTls = false;
      jenkins(c).perBuild = { enabled: false };
      jenkins(c).dockerSocket = true;
      jenkins(c).dockerAccess = { static: "tls", perBuild: "ssh" };
    });
    const issues = issuesOf(() => loadStack(root, "testing", TAG));
    expect(issues.map((i) => i.path)).toEqual([
      "berth:jenkins.dockerAccess.perBuild",
      "berth:jenkins.dockerAccess.static",
      "berth:jenkins.dockerSocket",
    ]);
    const text = issues.map((i) => i.message).join("\n");
    expect(text).toMatch(/berth:hosts\.dockerTls is false; set berth:hosts\.dockerTls: true/);
    expect(text).toMatch(/replaced by berth:jenkins\.dockerAccess\.static: "socket"/);
    expect(text).toMatch(/none.*socket.*tls/);
  });

  it("berth validate says which kinds reach Docker, and that it is root on the host", async () => {
    const root = editedStackRoot((c) => {
      jenkins(c).dockerAccess = { static: "socket" };
    });
    const r = await cli(root, "validate", "testing");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Docker access: static agents socket, per-build none \(root on the host\)/);
    const plain = await cli(
      editedStackRoot(() => {}),
      "validate",
      "testing",
    );
    expect(plain.out).toMatch(
      /Docker access: static agents none, per-build none\n|Docker access: static agents none, per-build none$/m,
    );
    expect(plain.out).not.toMatch(/root on the host/);
  });

  it("berth plan says it in plan.md, and only when some kind has access", async () => {
    const out = mkdtempSync(join(tmpdir(), "berth-access-plan-"));
    try {
      const root = editedStackRoot((c) => {
        jenkins(c).dockerAccess = { perBuild: "tls" };
      });
      const r = await cli(root, "plan", "testing", "--out", join(out, "tls"));
      expect(r.code, r.err).toBe(0);
      const md = readFileSync(join(out, "tls", "plan.md"), "utf8");
      expect(md).toContain("## Docker access from jobs");
      expect(md).toMatch(
        /Static agents: `none`; per-build agents: `tls`\. \*\*Docker access is root on that host\*\*/,
      );
      const shipped = await cli(
        editedStackRoot(() => {}),
        "plan",
        "testing",
        "--out",
        join(out, "none"),
      );
      expect(shipped.code, shipped.err).toBe(0);
      expect(readFileSync(join(out, "none", "plan.md"), "utf8")).not.toContain("Docker access");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
