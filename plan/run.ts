/** Runs the real Berth program for a stack, offline, under Pulumi's mocks. */
import { loadCheckedStack } from "../stack/validate.ts";
import type { BerthConfig } from "../config/types.ts";
import { berthProgram, type BerthOutputs } from "../program.ts";
import { runUnderMocks, type CapturedResource, type MockOptions } from "./mocks.ts";

export interface StackRun {
  config: BerthConfig;
  resources: CapturedResource[];
  outputs: BerthOutputs;
}

/** Runs the program for `config` (already validated); `mocks.outputs`: see {@link MockOptions}. */
export async function runConfig(
  config: BerthConfig,
  mocks: Pick<MockOptions, "outputs"> = {},
): Promise<StackRun> {
  const run = await runUnderMocks(config.stack, () => berthProgram(config), mocks);
  return { config, resources: run.resources, outputs: run.result };
}

/** Validates `stacks/Pulumi.<stack>.yaml` (or derives pr-<N>) and runs the program for it. */
export async function runStack(root: string, stack: string): Promise<StackRun> {
  return runConfig(loadCheckedStack(root, stack));
}

/** The value of a captured input, unwrapping a secret mark. */
export function plain(v: unknown): unknown {
  if (v && typeof v === "object" && (v as { secret?: unknown }).secret === true && "value" in v)
    return (v as { value: unknown }).value;
  return v;
}

export function isSecret(v: unknown): boolean {
  return !!v && typeof v === "object" && (v as { secret?: unknown }).secret === true;
}
