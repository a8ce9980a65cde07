/**
 * `berth plan|render <stack> --out X` with an X that cannot be an output directory: one clear
 * error naming `--out` and the fix, exit 1, no stack trace, nothing written. Through the real CLI,
 * in process and as a child process (`node bin/berth.js`, whose whole stderr is checked).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";
import { cli } from "../support/cli.ts";
import { checkTools, toolsIt } from "../support/tools.ts";

const tmp = mkdtempSync(join(tmpdir(), "berth-out-"));
chmodSync(tmp, 0o755);
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync("umount", [m]);
  rmSync(tmp, { recursive: true, force: true });
});

const aFile = join(tmp, "a-file");
writeFileSync(aFile, "not a directory\n");
// Read-only by mode: refused for anyone but root (root ignores modes; see the mount case below).
const readOnlyDir = join(tmp, "read-only");
mkdirSync(readOnlyDir);
chmodSync(readOnlyDir, 0o555);
const isRoot = process.getuid?.() === 0;

const FIX = "give --out a directory you can write to (it is created when missing)";
const STACK_TRACE = /\n\s+at /;

/** [case, --out value, what the error says]. */
const CASES: [string, string, RegExp][] = [
  ["an existing file", aFile, /^--out \S+ is a file; /],
  ["a path below a file", join(aFile, "plan"), /^--out \S+: a part of the path is a file, not a directory; /],
  ["an empty string", "", /^--out is empty: /],
  ["/dev/null", "/dev/null", /^--out \/dev\/null is not a directory \(a device or other special file\); /],
  ["a directory below /dev/null", "/dev/null/x", /^--out \/dev\/null\/x: a part of the path is a file/],
];

function expectRefusal(r: { code: number | null; err: string; out: string }, says: RegExp): void {
  expect(r.code, r.err).toBe(1);
  expect(r.out).toBe("");
  const err = r.err.trim();
  expect(err).toMatch(says);
  expect(err).toContain(FIX);
  expect(err.split("\n")).toHaveLength(1);
  expect(err).not.toMatch(STACK_TRACE);
}

/** `node bin/berth.js …` as a child process, optionally as another user (root only). */
function berth(args: string[], user?: string) {
  const node = [process.execPath, join(PROJECT_ROOT, "bin", "berth.js"), ...args];
  const [cmd, ...argv] = user ? ["runuser", "-u", user, "--", ...node] : node;
  const r = spawnSync(cmd!, argv, { cwd: tmp, encoding: "utf8", timeout: 150_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Some cases start `node bin/berth.js`: allow for a loaded machine.
describe("--out that cannot be an output directory", { timeout: 180_000 }, () => {
  for (const command of ["plan", "render"]) {
    it.each(CASES)(
      `berth ${command} testing --out <%s>: one clear error, exit 1`,
      async (_case, out, says) => {
        expectRefusal(await cli(PROJECT_ROOT, command, "testing", "--out", out), says);
        expect(readdirSync(tmp).sort()).toEqual(["a-file", "read-only"]);
      },
    );
  }

  it.each(CASES)(
    "node bin/berth.js plan testing --out <%s>: the same, and no stack trace on stderr",
    (_c, out, says) => {
      expectRefusal(berth(["plan", "testing", "--out", out]), says);
    },
  );

  it("a read-only directory (mode 0555), as a user that is not root", async () => {
    const says = /^--out \S+: the directory is not writable \(permission denied\); /;
    const r = isRoot
      ? berth(["render", "testing", "--out", readOnlyDir], "nobody")
      : await cli(PROJECT_ROOT, "render", "testing", "--out", readOnlyDir);
    expectRefusal(r, says);
    const below = join(readOnlyDir, "plan");
    const p = isRoot
      ? berth(["plan", "testing", "--out", below], "nobody")
      : await cli(PROJECT_ROOT, "plan", "testing", "--out", below);
    expectRefusal(p, new RegExp(`^--out \\S+: ${readOnlyDir} is not writable \\(permission denied\\); `));
    expect(readdirSync(readOnlyDir)).toEqual([]);
  });

  toolsIt(checkTools("read-only mount", [{ tool: "mount", debianPackage: "mount" }], { needsRoot: true }))(
    "a directory on a read-only file system (a read-only tmpfs), even as root",
    async () => {
      const ro = join(tmp, "ro-mount");
      mkdirSync(ro);
      const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "berth-test-ro", ro], {
        encoding: "utf8",
      });
      expect(mounted.status, mounted.stderr).toBe(0);
      mounts.push(ro);
      expectRefusal(
        await cli(PROJECT_ROOT, "plan", "testing", "--out", ro),
        /^--out \S+: the directory is not writable \(it is on a read-only file system\); /,
      );
      expectRefusal(
        await cli(PROJECT_ROOT, "render", "testing", "--out", join(ro, "x")),
        /^--out \S+: \S+ is not writable \(it is on a read-only file system\); /,
      );
      expect(existsSync(join(ro, "x"))).toBe(false);
    },
  );
});
