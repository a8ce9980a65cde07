/**
 * The real-tool guards: a missing program skips its tests on a developer machine, fails them under
 * CI=true, and a tag filter deselects them explicitly on a runner that cannot have them.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";
import { checkTools, inCi } from "./tools.ts";

const NONE = [{ tool: "berth-no-such-tool", debianPackage: "berth-nothing" }];

describe("inCi", () => {
  it.each([
    [{ CI: "true" }, true],
    [{ CI: "1" }, true],
    [{ CI: "false" }, false],
    [{ CI: "0" }, false],
    [{ CI: "" }, false],
    [{}, false],
  ])("%o -> %s", (env, expected) => {
    expect(inCi(env)).toBe(expected);
  });
});

describe("checkTools", () => {
  it("finds a present tool", () => {
    const check = checkTools("s", [{ tool: "sh", debianPackage: "dash" }], { env: { CI: "true" } });
    expect(check).toMatchObject({ skip: false, missing: [], reason: "" });
    expect(check.paths.sh).toMatch(/\/sh$/);
  });

  it("skips locally and does not skip under CI when a tool is missing, naming the package", () => {
    expect(checkTools("s", NONE, { env: {} })).toMatchObject({
      skip: true,
      missing: ["berth-no-such-tool (apt-get install -y berth-nothing)"],
    });
    const ci = checkTools("s", NONE, { env: { CI: "true" } });
    expect(ci.skip).toBe(false);
    expect(ci.reason).toBe(
      "s: required tools are missing: berth-no-such-tool (apt-get install -y berth-nothing)",
    );
  });

  it("counts missing root privileges as missing", () => {
    expect(checkTools("s", [], { needsRoot: true, uid: 1000, env: {} }).missing).toEqual([
      "root privileges (loop devices and mounts)",
    ]);
    expect(checkTools("s", [], { needsRoot: true, uid: 0, env: {} }).missing).toEqual([]);
  });
});

// Each case starts a vitest of its own: allow for a loaded machine.
describe("a suite whose tool is missing, run by vitest", { timeout: 180_000 }, () => {
  const vitest = (env: NodeJS.ProcessEnv, ...args: string[]) => {
    const r = spawnSync(
      process.execPath,
      [
        join(PROJECT_ROOT, "node_modules/vitest/vitest.mjs"),
        "run",
        "--config",
        join(PROJECT_ROOT, "test/fixtures/tools/vitest.config.ts"),
        ...args,
      ],
      { cwd: PROJECT_ROOT, encoding: "utf8", env: { ...process.env, CI: "", ...env }, timeout: 150_000 },
    );
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  };

  it("fails the run under CI=true, saying what to install", () => {
    const r = vitest({ CI: "true" });
    expect(r.status, r.output).toBe(1);
    expect(r.output).toContain("berth-no-such-tool (apt-get install -y berth-nothing)");
    expect(r.output).toContain("CI must provide them");
    expect(r.output).toMatch(/2 failed/);
  });

  it("skips it (with the reason in its name) outside CI", () => {
    const r = vitest({});
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/1 passed/);
    expect(r.output).toMatch(/2 skipped/);
  });

  it("deselects it explicitly with --tags-filter='!real-tools', even under CI=true", () => {
    const r = vitest({ CI: "true" }, "--tags-filter=!real-tools");
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/1 passed/);
    expect(r.output).not.toMatch(/failed/);
  });
});
