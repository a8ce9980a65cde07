/**
 * The one place that reads Pulumi configuration. Turns the stack's `berth:*` keys into the typed
 * `BerthConfig`, or stops the program with one readable message (a `RunError`, which Pulumi prints
 * without a stack trace) before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./errors.ts";
import { berthValues, needsDerivation, previewFromTesting, resolveConfig } from "./load.ts";
import type { BerthConfig } from "./types.ts";

import { PROJECT_ROOT } from "./root.ts";

function parseValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v; // plain string values are not JSON-encoded
  }
}

export function loadConfigFromPulumi(root: string = PROJECT_ROOT): BerthConfig {
  const stack = pulumi.getStack();
  try {
    const all = Object.fromEntries(
      Object.entries(pulumi.runtime.allConfig()).map(([k, v]) => [k, parseValue(v)]),
    );
    const values = berthValues(all);
    // A preview stack has no file of its own: it is testing with a smaller footprint.
    const raw = needsDerivation(stack, values)
      ? previewFromTesting(root, stack, values)
      : { values, source: `stacks/Pulumi.${stack}.yaml` };
    return resolveConfig(stack, raw, { root });
  } catch (e) {
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
}
