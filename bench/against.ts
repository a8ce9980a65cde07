/**
 * Benchmark: `berth plan <stack> --against <ref>` for a 100-host stack, timed end to end (two full
 * program evaluations, the worktree checkout and the diff), next to one plain `berth plan` of the
 * same stack in the same run.
 *
 *   npx tsx bench/against.ts [hosts]      default 100
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../config/root.ts";

const hosts = Number(process.argv[2] ?? 100);
const work = mkdtempSync(join(tmpdir(), "berth-bench-against-"));
const repo = join(work, "repo");
const run = (cmd: string, args: string[], cwd = repo) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, out: r.stdout };
};
try {
  run("git", ["clone", "-q", PROJECT_ROOT, repo], work);
  symlinkSync(join(PROJECT_ROOT, "node_modules"), join(repo, "node_modules"), "dir");
  const staging = readFileSync(join(repo, "stacks", "Pulumi.staging.yaml"), "utf8");
  const big = staging
    .replace(/count: 2/, `count: ${hosts}`)
    .replace(/networkCidr: 10\.42\.20\.0\/24/, "networkCidr: 10.42.0.0/16");
  writeFileSync(join(repo, "stacks", "Pulumi.fleet.yaml"), big);
  const git = (...a: string[]) =>
    run("git", ["-c", "user.email=b@example.com", "-c", "user.name=bench", ...a]);
  git("add", "stacks/Pulumi.fleet.yaml");
  git("commit", "-qm", `fleet of ${hosts}`);
  writeFileSync(
    join(repo, "stacks", "Pulumi.fleet.yaml"),
    big.replace(/agentsPerHost: 3/, "agentsPerHost: 4"),
  );
  git("commit", "-qam", "one more agent per host");
  const berth = join(repo, "bin", "berth.js");
  const plain = run(process.execPath, [berth, "plan", "fleet", "--out", join(work, "plain")]);
  const against = run(process.execPath, [
    berth,
    "plan",
    "fleet",
    "--against",
    "HEAD~1",
    "--out",
    join(work, "against"),
  ]);
  const summary = against.out.split("\n").find((l) => l.includes("to add")) ?? "";
  console.log(`berth plan with ${hosts} hosts (node ${process.version}, ${new Date().toISOString()})`);
  console.log("command | wall ms");
  console.log("---|---");
  console.log(`berth plan fleet | ${plain.ms.toFixed(0)}`);
  console.log(`berth plan fleet --against HEAD~1 | ${against.ms.toFixed(0)}`);
  console.log(`ratio against/plain | ${(against.ms / plain.ms).toFixed(2)}`);
  console.log(`\ndiff: ${summary}`);
} finally {
  spawnSync("git", ["-C", PROJECT_ROOT, "worktree", "prune"]);
  rmSync(work, { recursive: true, force: true });
}
