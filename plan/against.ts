/**
 * Builds the plan of a stack as it was at a git ref: the ref's tree is checked out in a temporary
 * worktree and its own `berth plan` runs there (the code of that commit, not of the working tree),
 * with this checkout's node_modules.
 */
import { spawn, spawnSync } from "node:child_process";
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

/** Runs `berth` of a checkout; resolves with its exit status and output. */
function runBerth(
  tree: string,
  args: string[],
  signal?: AbortSignal,
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(tree, "bin", "berth.js"), ...args], {
      cwd: tree,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(signal ? { signal } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, output: (stderr || stdout).trim() }));
  });
}

/**
 * The plan of `stack` at `ref`, or `undefined` when the stack did not exist there. The ref's plan
 * runs in a child process, so the caller can plan the working tree meanwhile (both evaluations
 * then share the machine's cores instead of running one after the other). Aborting `signal` stops
 * that child; the worktree is removed either way. `env` is added to the child's environment.
 */
export async function planAtRef(
  root: string,
  ref: string,
  stack: string,
  signal?: AbortSignal,
  env: NodeJS.ProcessEnv = {},
): Promise<Plan | undefined> {
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
    const r = await runBerth(tree, ["plan", stack, "--out", out], signal, env);
    if (r.status !== 0) throw new AgainstError(`berth plan ${stack} at ${ref} failed:\n${r.output}`);
    return JSON.parse(readFileSync(join(out, "plan.json"), "utf8")) as Plan;
  } finally {
    spawnSync("git", ["-C", root, "worktree", "remove", "--force", tree]);
    rmSync(dir, { recursive: true, force: true });
  }
}
