/**
 * The one place that reads Pulumi configuration. Turns the stack's `berth:*` keys into the typed
 * `BerthConfig`, or stops the program with one readable message (a `RunError`, which Pulumi prints
 * without a stack trace) before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { NAMESPACE, berthValues, needsDerivation, previewFromTesting, resolveConfig } from "./load.ts";
import { namespaceIssues } from "./validate-input.ts";
import type { BerthConfig } from "./types.ts";

import { PROJECT_ROOT } from "./root.ts";

function parseValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v; // plain string values are not JSON-encoded
  }
}

/**
 * `check` runs on the resolved configuration (index.ts passes the rendered-host checks of
 * `stack/validate.ts`, which `config/` must not import); its issues stop the program the same way.
 */
export function loadConfigFromPulumi(
  root: string = PROJECT_ROOT,
  check?: (cfg: BerthConfig) => ConfigIssue[],
): BerthConfig {
  const stack = pulumi.getStack();
  try {
    const all = Object.fromEntries(
      Object.entries(pulumi.runtime.allConfig()).map(([k, v]) => [k, parseValue(v)]),
    );
    const values = berthValues(all);
    const own = { values, source: `stacks/Pulumi.${stack}.yaml`, issues: namespaceIssues(all, NAMESPACE) };
    // A preview stack without a whole configuration of its own is testing with a smaller footprint.
    const raw = needsDerivation(stack, values) ? previewFromTesting(root, stack, values, own) : own;
    const cfg = resolveConfig(stack, raw, { root });
    const late = check?.(cfg) ?? [];
    if (late.length > 0) throw new ConfigError(stack, raw.source, late);
    return cfg;
  } catch (e) {
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
}
