/**
 * `berth janitor [--apply] [--now <iso>]`: lists the project's stacks, decides which `pr-<N>`
 * preview stacks are expired (PR closed or merged, or older than their TTL) and, with `--apply`,
 * destroys and removes each of them. Without `--apply` it only prints what it would do.
 *
 * Needs the Pulumi CLI, a logged-in backend and cloud credentials (as `pulumi destroy` does), and
 * `GITHUB_TOKEN` + `GITHUB_REPOSITORY` to read pull request states.
 */
import { parseArgs } from "node:util";
import { loadStack } from "../config/load.ts";
import { githubPullRequests, type PullRequestStates } from "./github.ts";
import { classifyStacks, previewPr, type Decision, type PrState, type StackInfo } from "./select.ts";
import { workspaceAdapter, type StackAdapter } from "./stacks.ts";

export interface JanitorIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface JanitorDeps {
  /** Project root (Pulumi.yaml, stacks/). */
  root: string;
  /** Pulumi access; default: the Automation API on `root`. */
  stacks?: StackAdapter;
  /** Pull request states; default: GitHub REST API from `env`. */
  prs?: PullRequestStates;
  /** Environment for the GitHub defaults. */
  env?: Record<string, string | undefined>;
  /** TTL of preview stacks without their own; default: testing's `berth:previewTtlHours` (72). */
  defaultTtlHours?: number;
}

export const JANITOR_USAGE = `Usage: berth janitor [--apply] [--now <iso time>]
  Destroys and removes pr-<N> preview stacks whose pull request is closed or merged, or that were
  last updated longer ago than their TTL (berth:previewTtlHours, default 72 h). Dry run unless --apply.`;

const FALLBACK_TTL_HOURS = 72;

/** The TTL preview stacks get from testing's stack file (schema default 72). */
export function defaultPreviewTtl(root: string): number {
  try {
    // Any pr-<N> name gives the derived preview configuration.
    return loadStack(root, "pr-1").preview?.ttlHours ?? FALLBACK_TTL_HOURS;
  } catch {
    return FALLBACK_TTL_HOURS;
  }
}

function line(d: Decision): string {
  return `${d.action.padEnd(7)} ${d.stack}: ${d.reasons.join("; ")}`;
}

export async function runJanitor(argv: string[], io: JanitorIo, deps: JanitorDeps): Promise<number> {
  let values: { apply?: boolean; now?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: { apply: { type: "boolean" }, now: { type: "string" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (e) {
    io.err(`${(e as Error).message}\n${JANITOR_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(JANITOR_USAGE);
    return 0;
  }
  const now = values.now !== undefined ? new Date(values.now) : new Date();
  if (Number.isNaN(now.getTime())) {
    io.err(`--now: not an ISO 8601 time: ${values.now}\n${JANITOR_USAGE}`);
    return 2;
  }
  const apply = values.apply === true;

  let prs = deps.prs;
  if (!prs) {
    const gh = githubPullRequests(deps.env ?? process.env);
    if (gh.warning) io.err(`warning: ${gh.warning}`);
    prs = gh.prs;
  }
  const stacks = deps.stacks ?? (await workspaceAdapter(deps.root));
  const ttlDefault = deps.defaultTtlHours ?? defaultPreviewTtl(deps.root);

  const listed = await stacks.listStacks();
  const infos: StackInfo[] = [];
  const states = new Map<number, PrState>();
  for (const s of listed) {
    const pr = previewPr(s.name);
    if (pr === undefined) {
      infos.push(s);
      continue;
    }
    const ttl = await stacks.previewTtlHours(s.name);
    infos.push(ttl !== undefined ? { ...s, ttlHours: ttl } : s);
    if (!states.has(pr)) states.set(pr, await prs.state(pr).catch((): PrState => "unknown"));
  }

  const decisions = classifyStacks(infos, states, now, { ttlHours: ttlDefault });
  const previews = decisions.filter((d) => d.action !== "ignore");
  const selected = previews.filter((d) => d.action === "destroy");
  io.out(
    `berth janitor at ${now.toISOString()} (${apply ? "apply" : "dry run"}): ${listed.length} stack(s), ` +
      `${previews.length} preview stack(s), ${selected.length} to destroy; default TTL ${ttlDefault} h`,
  );
  for (const d of previews) io.out(line(d));
  if (!apply) {
    if (selected.length > 0)
      io.out("dry run: nothing destroyed; run with --apply to destroy and remove these stacks");
    return 0;
  }

  let failures = 0;
  for (const d of selected) {
    io.out(`destroying ${d.stack} ...`);
    try {
      await stacks.destroy(d.stack, (s) => io.out(s.replace(/\n$/, "")));
    } catch (e) {
      failures++;
      io.err(`error: destroying ${d.stack} failed; the stack is kept: ${(e as Error).message}`);
      continue;
    }
    try {
      await stacks.remove(d.stack);
      io.out(`removed ${d.stack}`);
    } catch (e) {
      failures++;
      io.err(`error: ${d.stack} was destroyed but removing the stack failed: ${(e as Error).message}`);
    }
  }
  return failures > 0 ? 1 : 0;
}
