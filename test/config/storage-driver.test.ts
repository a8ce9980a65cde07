/** `berth:hosts.storageDriver`: default, the accepted values, one clear error for a bad one. */
import { describe, expect, it } from "vitest";

import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { cli, issuesOf } from "../support/cli.ts";
import { editedStackRoot } from "../support/stacks.ts";

const withDriver = (value: unknown, stack = "testing") =>
  editedStackRoot((c) => {
    (c["berth:hosts"] as Record<string, unknown>).storageDriver = value;
  }, stack);

describe("hosts.storageDriver", () => {
  it("defaults to btrfs in every shipped stack, as the seeds chose", () => {
    for (const stack of ["testing", "staging", "production", "pr-17"]) {
      const c = loadStack(PROJECT_ROOT, stack);
      expect(c.hosts.storageDriver, stack).toBe("btrfs");
      expect(hostIgnitionBase(c, c.hosts.names[0]!).storageDriver, stack).toBe("btrfs");
    }
  });

  it("accepts overlay2, reaches every host's Ignition input and the summary", async () => {
    const root = withDriver("overlay2");
    const c = loadStack(root, "testing");
    expect(c.hosts.storageDriver).toBe("overlay2");
    for (const host of c.hosts.names) expect(hostIgnitionBase(c, host).storageDriver).toBe("overlay2");
    const r = await cli(root, "validate", "testing");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("GiB ext4 (overlay2) docker volume each");
  });

  it.each([["overlay"], ["OVERLAY2"], ["devicemapper"], [""], [2]])(
    "refuses %j with one message naming the field and the allowed values",
    async (value) => {
      const root = withDriver(value);
      const issues = issuesOf(() => loadStack(root, "testing"));
      expect(issues.map((i) => i.path)).toEqual(["berth:hosts.storageDriver"]);
      const r = await cli(root, "validate", "testing");
      expect(r.code).toBe(1);
      expect(r.err).toContain("berth:hosts.storageDriver");
      expect(r.err).toMatch(/"btrfs", "overlay2"/);
      expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    },
  );

  it("reports a bad driver together with the other bad fields", () => {
    const root = editedStackRoot((c) => {
      const hosts = c["berth:hosts"] as Record<string, unknown>;
      hosts.storageDriver = "zfs";
      hosts.count = 0;
    });
    const paths = issuesOf(() => loadStack(root, "testing")).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["berth:hosts.storageDriver", "berth:hosts.count"]));
  });
});
