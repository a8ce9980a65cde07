/** One bad field: its path as the user writes it (`berth:hosts.count`) and what is expected. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/**
 * Every problem found in a stack's configuration, reported together. `message` is the whole,
 * human-readable report; callers print it as is (no stack trace).
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(stack: string, source: string, issues: ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const lines = sorted.map((i) => `  - ${i.path}: ${i.message}`);
    super(
      [
        `Invalid Berth configuration for stack "${stack}" (${source}): ${sorted.length} problem${sorted.length === 1 ? "" : "s"}`,
        ...lines,
        `Fix them in ${source} (or with \`pulumi config set --path --stack ${stack} <key> <value>\`), then run \`berth validate ${stack}\`.`,
      ].join("\n"),
    );
    this.name = "ConfigError";
    this.issues = sorted;
  }
}

/**
 * A check that fails only when Berth itself is wrong: everything a user can cause is refused by
 * validation (a {@link ConfigError} naming the field), so what is left in components and the layers
 * below them are bug checks. Their message says so and what validation should have refused.
 */
export class InternalError extends Error {
  constructor(what: string) {
    super(`bug in Berth: ${what} (validation should have refused this; please report it)`);
    this.name = "InternalError";
  }
}

/** A bug check's error: `throw internalError("...")`. */
export function internalError(what: string): InternalError {
  return new InternalError(what);
}
