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
 * Bug checks (`throw internalError("...")`): defined beside the renderers' RenderError, the lowest
 * layer, so that every layer can use them (docs/architecture.md, "Layers").
 */
export { InternalError, internalError } from "../renderers/common.ts";
