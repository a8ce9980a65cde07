/**
 * `berth jenkins-casc <stack>` offline: runs the real program under Pulumi's mocks and returns the
 * stack output `jenkinsCasc`. Under mocks the floating IPs are the mock's placeholder addresses
 * (203.0.113.0/24, TEST-NET-3), so the text says so; `pulumi stack output jenkinsCasc` gives the
 * snippet with the real addresses.
 */
import type { BerthConfig } from "../config/types.ts";
import { resolveOutput } from "./mocks.ts";
import { runConfig, runStack } from "./run.ts";

export const PLACEHOLDER_NOTE =
  "Offline rendering: the tcp:// addresses are PLACEHOLDERS from Pulumi mocks (203.0.113.0/24); `pulumi stack output jenkinsCasc` has the real floating IPs.";

export interface CascResult {
  config: BerthConfig;
  /** The YAML text of the stack output, with the placeholder note in its header. */
  yaml: string;
}

function withNote(yaml: string): string {
  const lines = yaml.split("\n");
  // After the first header line ("# Berth stack ...").
  lines.splice(1, 0, `# ${PLACEHOLDER_NOTE}`);
  return lines.join("\n");
}

/** The snippet of a validated configuration, under mocks. */
export async function cascForConfig(config: BerthConfig): Promise<CascResult> {
  const run = await runConfig(config);
  const { value } = await resolveOutput(run.outputs.jenkinsCasc);
  return { config, yaml: withNote(value) };
}

/** The snippet of `stacks/Pulumi.<stack>.yaml` (pr-<N>: derived from testing), under mocks. */
export async function cascForStack(root: string, stack: string): Promise<CascResult> {
  const run = await runStack(root, stack);
  const { value } = await resolveOutput(run.outputs.jenkinsCasc);
  return { config: run.config, yaml: withNote(value) };
}
