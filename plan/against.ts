/**
 * Builds the plan of a stack as it was at a git ref: the ref's tree is checked out in a temporary
 * worktree and its own `berth plan` runs there (the code of that commit, not of the working tree),
 * with this checkout's node_modules.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Plan } from "./plan.ts";

export class AgainstError extends Error {
  override name = "AgainstError";
}

function git(root: string, args: string[]): string {
  const r = spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new AgainstError(`git ${args.join(" ")} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The plan of `stack` at `ref`, or `undefined` when the stack did not exist there. */
export function planAtRef(root: string, ref: string, stack: string): Plan | undefined {
  const commit = git(root, ["rev-parse", "--verify", `${ref}^{commit}`]);
  const dir = mkdtempSync(join(tmpdir(), "berth-against-"));
  const tree = join(dir, "tree");
  try {
    git(root, ["worktree", "add", "--detach", "--force", tree, commit]);
    if (!existsSync(join(tree, "node_modules")))
      symlinkSync(join(root, "node_modules"), join(tree, "node_modules"), "dir");
    if (!existsSync(join(tree, "cli", "main.ts")))
      throw new AgainstError(`${ref} (${commit.slice(0, 12)}) has no berth command to plan with`);
    const isPreview = /^pr-\d+$/.test(stack);
    if (!existsSync(join(tree, "stacks", `Pulumi.${isPreview ? "testing" : stack}.yaml`))) return undefined;
    const out = join(dir, "out");
    const r = spawnSync(process.execPath, [join(tree, "bin", "berth.js"), "plan", stack, "--out", out], {
      cwd: tree,
      encoding: "utf8",
    });
    if (r.status !== 0)
      throw new AgainstError(`berth plan ${stack} at ${ref} failed:\n${(r.stderr || r.stdout).trim()}`);
    return JSON.parse(readFileSync(join(out, "plan.json"), "utf8")) as Plan;
  } finally {
    spawnSync("git", ["-C", root, "worktree", "remove", "--force", tree]);
    rmSync(dir, { recursive: true, force: true });
  }
}
