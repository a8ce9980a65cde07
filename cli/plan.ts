/** `berth plan <stack> [--out DIR]`: plan.md, plan.json and the hosts' Ignition, offline. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runStack } from "../plan/run.ts";
import { buildPlan, renderPlanJson, renderPlanMarkdown } from "../plan/plan.ts";
import { writeIgnitionFiles } from "./render.ts";

export async function planStack(root: string, stack: string, out: string): Promise<string[]> {
  const run = await runStack(root, stack);
  const plan = buildPlan(run);
  mkdirSync(out, { recursive: true });
  const md = join(out, "plan.md");
  const json = join(out, "plan.json");
  writeFileSync(md, renderPlanMarkdown(plan));
  writeFileSync(json, renderPlanJson(plan));
  return [md, json, ...writeIgnitionFiles(run, out)];
}
