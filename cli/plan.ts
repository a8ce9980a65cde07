/** `berth plan <stack> [--out DIR]`: plan.md, plan.json and the hosts' Ignition, offline. */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runStack } from "../plan/run.ts";
import { buildPlan, renderPlanJson, renderPlanMarkdown, withoutDigests } from "../plan/plan.ts";
import { writeFileWithMode, writeIgnitionFiles } from "./render.ts";
import { planAtRef } from "../plan/against.ts";
import { diffPlans, renderDiffMarkdown } from "../plan/diff.ts";
import { writingTo } from "./out.ts";

/** Environment variable through which `berth plan --against` hands its child the digest key. */
export const SECRET_DIGEST_KEY_ENV = "BERTH_PLAN_SECRET_DIGEST_KEY";

export interface PlanResult {
  files: string[];
  /** With `against`: the Markdown comparison, also written to `diff.md`. */
  diffMarkdown?: string;
}

export async function planStack(
  root: string,
  stack: string,
  out: string,
  against?: string,
): Promise<PlanResult> {
  // With --against, the ref's plan runs in a child process while this one runs here. Both digest
  // their secret inputs under one random key (given to the child in its environment), so a change
  // of a secret is reported without showing it; the key is forgotten afterwards.
  const abort = new AbortController();
  const secretDigestKey =
    against === undefined ? process.env[SECRET_DIGEST_KEY_ENV] : randomBytes(32).toString("hex");
  const basePlan =
    against === undefined
      ? undefined
      : planAtRef(root, against, stack, abort.signal, { [SECRET_DIGEST_KEY_ENV]: secretDigestKey });
  // Not awaited until after this plan: keep a failure from being reported as unhandled meanwhile.
  basePlan?.catch(() => undefined);
  const run = await runStack(root, stack).catch(async (err: unknown) => {
    // This plan failed (e.g. a configuration error): stop the ref's and let its worktree go.
    abort.abort();
    await basePlan?.catch(() => undefined);
    throw err;
  });
  const plan = buildPlan(run, secretDigestKey === undefined ? {} : { secretDigestKey });
  const md = join(out, "plan.md");
  const json = join(out, "plan.json");
  const diff = join(out, "diff.md");
  const files = writingTo(out, () => {
    mkdirSync(out, { recursive: true });
    writeFileWithMode(md, renderPlanMarkdown(plan), 0o644);
    // The child of a comparison keeps the digests (its parent reads them from a temporary
    // directory); a reviewer's plan.json never has them.
    writeFileWithMode(json, renderPlanJson(against === undefined ? plan : withoutDigests(plan)), 0o644);
    // A diff.md of an earlier --against run would not describe this plan.
    if (against === undefined) rmSync(diff, { force: true });
    return [md, json, ...writeIgnitionFiles(run, out)];
  });
  if (basePlan === undefined || against === undefined) return { files };
  const base = (await basePlan) ?? {
    stack,
    environment: plan.environment,
    resources: [],
    hosts: [],
  };
  const diffMarkdown = renderDiffMarkdown(diffPlans(base, plan), against);
  writingTo(out, () => writeFileWithMode(diff, diffMarkdown, 0o644));
  return { files: [...files, diff], diffMarkdown };
}
