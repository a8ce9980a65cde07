/** Shared helpers for tests that drive the `berth` command in-process. */
import { expect } from "vitest";
import { main } from "../../cli/main.ts";
import { ConfigError, type ConfigIssue } from "../../config/errors.ts";

/** Runs `berth <argv>` against the project in `root`; returns its exit code and what it printed. */
export async function cli(
  root: string,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) }, root);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** The issues of the ConfigError `fn` throws (fails the test when it throws nothing or something else). */
export function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return [...(e as ConfigError).issues];
  }
  throw new Error("expected a ConfigError");
}
