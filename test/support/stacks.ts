/** Temporary project roots holding a shipped stack file, edited by a test. */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { parse, stringify } from "yaml";
import { ConfigError, loadStack, type BerthConfig } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";

/** A stack file's `config:` map: one object per `berth:*` (and other) key. */
export type StackConfigMap = Record<string, Record<string, unknown>>;

const roots: string[] = [];
afterAll(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/**
 * A project root holding `stacks/Pulumi.<stack>.yaml`, the shipped file edited by `edit`; removed
 * after the test file's tests.
 */
export function editedStackRoot(edit: (c: StackConfigMap) => void, stack = "testing"): string {
  const root = mkdtempSync(join(tmpdir(), `berth-${stack}-`));
  roots.push(root);
  mkdirSync(join(root, "stacks"));
  // The masking files the stacks' restore settings name (berth:services.productionLike[].restore).
  cpSync(join(PROJECT_ROOT, "stacks", "masking"), join(root, "stacks", "masking"), { recursive: true });
  const file = `Pulumi.${stack}.yaml`;
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", file), "utf8")) as { config: StackConfigMap };
  edit(doc.config);
  writeFileSync(join(root, "stacks", file), stringify(doc));
  return root;
}

/** An agent image tag, as CI passes it, for loading a stack in tests. */
const TAG = { agentImageTag: "rev1" };

/** The shipped stack, edited by `edit`, loaded and validated. */
export function loadEdited(edit: (c: StackConfigMap) => void, stack = "testing"): BerthConfig {
  return loadStack(editedStackRoot(edit, stack), stack, TAG);
}

/** The ConfigError loading the edited stack throws; fails when the stack is accepted. */
export function refusedEdit(edit: (c: StackConfigMap) => void, stack = "testing"): ConfigError {
  try {
    loadEdited(edit, stack);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("the stack was accepted");
}
