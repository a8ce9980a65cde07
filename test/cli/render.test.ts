/**
 * `berth render` / `berth plan` into an existing `--out` (the normal workflow: `plan` reuses
 * out/plan/<stack>): every file gets its mode on every run, and files of an earlier run that this
 * run does not write are removed instead of left behind, misleading.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";
import { cli } from "../support/cli.ts";

const tmp = mkdtempSync(join(tmpdir(), "berth-render-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const mode = (p: string) => statSync(p).mode & 0o777;

describe("re-rendering into an existing --out", () => {
  it("gives a secret .ign mode 0600 although an earlier file was 0644, and removes stale host files", async () => {
    const out = join(tmp, "render");
    const hosts = join(out, "hosts");
    mkdirSync(hosts, { recursive: true });
    const ign = join(hosts, "testing-ci-1.ign");
    writeFileSync(ign, "old, public\n", { mode: 0o644 });
    writeFileSync(join(hosts, "testing-ci-9.ign"), "a host that is gone\n", { mode: 0o600 });
    writeFileSync(join(hosts, "notes.txt"), "not Berth's\n", { mode: 0o644 });
    expect(mode(ign)).toBe(0o644);

    const r = await cli(PROJECT_ROOT, "render", "testing", "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(mode(ign)).toBe(0o600);
    expect(readFileSync(ign, "utf8")).toMatch(/^\{"ignition":/);
    expect(readFileSync(join(hosts, "SECRET-FILES"), "utf8").split("\n")).toContain("testing-ci-1.ign");
    // Only Berth's own files are cleaned up.
    expect(readdirSync(hosts).sort()).toEqual(["SECRET-FILES", "notes.txt", "testing-ci-1.ign"]);
  });

  it("berth plan: the same for hosts/, and a diff.md of an earlier --against run is removed", async () => {
    const out = join(tmp, "plan");
    mkdirSync(join(out, "hosts"), { recursive: true });
    writeFileSync(join(out, "hosts", "testing-ci-1.ign"), "old\n", { mode: 0o666 });
    writeFileSync(join(out, "diff.md"), "No changes.\n");
    writeFileSync(join(out, "plan.json"), "{}\n", { mode: 0o600 });
    const r = await cli(PROJECT_ROOT, "plan", "testing", "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(mode(join(out, "hosts", "testing-ci-1.ign"))).toBe(0o600);
    expect(mode(join(out, "plan.json"))).toBe(0o644);
    expect(readdirSync(out).sort()).toEqual(["hosts", "plan.json", "plan.md"]);
    expect(readdirSync(join(out, "hosts")).sort()).toEqual(["SECRET-FILES", "testing-ci-1.ign"]);
  });
});
