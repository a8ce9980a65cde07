/**
 * The shipped stacks, and each run under Pulumi's mocks (plan/run.ts), for the component tests that
 * read the whole program's resources (test/components/{network,host,environment,host-services}.test.ts).
 */
import { beforeAll } from "vitest";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { runConfig, type StackRun } from "../../plan/run.ts";

/** The shipped stacks (stacks/Pulumi.<stack>.yaml). */
export const STACKS = ["testing", "staging", "production", "pr-17"] as const;

/** The run's resources of Pulumi type `t`. */
export const ofType = (run: StackRun, t: string) => run.resources.filter((r) => r.type === t);

/** The run's one resource named `name`. */
export const byName = (run: StackRun, name: string) => {
  const r = run.resources.find((x) => x.name === name);
  if (!r) throw new Error(`no resource named ${name}`);
  return r;
};

/**
 * Runs every stack of {@link STACKS} once before the calling file's tests (beforeAll); returns the
 * run of a stack by name.
 */
export function stackRuns(): (stack: string) => StackRun {
  const runs = new Map<string, StackRun>();
  beforeAll(async () => {
    // One mock run at a time: the mocks are process-wide.
    for (const s of STACKS) runs.set(s, await runConfig(loadStack(PROJECT_ROOT, s)));
  });
  return (s) => runs.get(s) as StackRun;
}
