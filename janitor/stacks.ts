/**
 * The janitor's only contact with Pulumi: a thin adapter over the Automation API's
 * `LocalWorkspace` (which drives the `pulumi` CLI), behind an interface so the command's flow is
 * tested with a fake. Nothing here decides anything.
 */
import type { StackInfo } from "./select.ts";

export interface StackAdapter {
  /** The project's stacks (`pulumi stack ls --json`). */
  listStacks(): Promise<StackInfo[]>;
  /** The stack's own `berth:previewTtlHours`, or undefined when it has none (or it is unreadable). */
  previewTtlHours(stack: string): Promise<number | undefined>;
  /** `pulumi destroy --yes --stack <stack>`. */
  destroy(stack: string, onOutput?: (line: string) => void): Promise<void>;
  /** `pulumi stack rm --yes <stack>` (only after a successful destroy). */
  remove(stack: string): Promise<void>;
}

export const TTL_KEY = "berth:previewTtlHours";

/** Parses a configured TTL: an integer number of hours, 1–720 (the schema's range). */
export function parseTtlHours(value: string): number | undefined {
  const n = Number(value.trim());
  return Number.isInteger(n) && n >= 1 && n <= 720 ? n : undefined;
}

/** The real adapter: `LocalWorkspace` on the project root (where Pulumi.yaml is). */
export async function workspaceAdapter(workDir: string): Promise<StackAdapter> {
  const { LocalWorkspace, Stack } = await import("@pulumi/pulumi/automation/index.js");
  const ws = await LocalWorkspace.create({ workDir });
  return {
    async listStacks() {
      const list = await ws.listStacks();
      return list.map((s) => ({
        name: s.name,
        ...(s.lastUpdate !== undefined ? { lastUpdate: s.lastUpdate } : {}),
        ...(s.updateInProgress !== undefined ? { updateInProgress: s.updateInProgress } : {}),
        ...(s.resourceCount !== undefined ? { resourceCount: s.resourceCount } : {}),
      }));
    },
    async previewTtlHours(stack) {
      try {
        const v = await ws.getConfig(stack, TTL_KEY);
        return parseTtlHours(v.value);
      } catch {
        // Not set on the stack (the usual case: preview stacks take testing's values).
        return undefined;
      }
    },
    async destroy(stack, onOutput) {
      const s = await Stack.select(stack, ws);
      await s.destroy({ color: "never", ...(onOutput ? { onOutput } : {}) });
    },
    async remove(stack) {
      await ws.removeStack(stack);
    },
  };
}
