/**
 * Which preview stacks `berth janitor` removes: pure, so it is tested table-driven without Pulumi
 * or GitHub. A `pr-<N>` stack goes when its pull request is closed or merged, or when it was last
 * updated more than its TTL ago. Nothing else is ever selected: stacks not named exactly `pr-<N>`,
 * and stacks with an update in progress, are left alone.
 */
import { PREVIEW_STACK } from "../config/load.ts";

/** What the janitor knows about a stack (from `pulumi stack ls`, plus its own TTL when set). */
export interface StackInfo {
  /** Name as the backend lists it: `pr-17`, or fully qualified `org/project/pr-17`. */
  name: string;
  /** ISO 8601 time of the last update; absent when the stack was never updated. */
  lastUpdate?: string;
  updateInProgress?: boolean;
  resourceCount?: number;
  /** The stack's own `berth:previewTtlHours`, when set. */
  ttlHours?: number;
}

/** State of a pull request; `unknown` when GitHub could not be asked or did not answer. */
export type PrState = "open" | "closed" | "merged" | "unknown";

export interface JanitorDefaults {
  /** TTL of preview stacks without one of their own (`berth:previewTtlHours`, default 72). */
  ttlHours: number;
}

export type Action = "destroy" | "keep" | "skip" | "ignore";

export interface Decision {
  stack: string;
  /** The pull request number, for preview stacks. */
  pr?: number;
  /**
   * `destroy`: expired or PR closed. `keep`: a live preview stack. `skip`: a preview stack the
   * janitor must not touch now (update in progress). `ignore`: not a preview stack.
   */
  action: Action;
  /** Why, in words (every reason that applies). */
  reasons: string[];
}

const HOUR_MS = 3_600_000;

/** The pull request number of a preview stack name (`pr-17`, `org/berth/pr-17`), else undefined. */
export function previewPr(name: string): number | undefined {
  const short = name.slice(name.lastIndexOf("/") + 1);
  const m = PREVIEW_STACK.exec(short);
  return m ? Number(m[1]) : undefined;
}

function hours(ms: number): string {
  const h = ms / HOUR_MS;
  return `${h >= 10 ? h.toFixed(0) : h.toFixed(1)} h`;
}

/** Decides, for every stack, what the janitor does with it and why. */
export function classifyStacks(
  stacks: readonly StackInfo[],
  prStates: ReadonlyMap<number, PrState>,
  now: Date,
  defaults: JanitorDefaults,
): Decision[] {
  return stacks.map((s): Decision => {
    const pr = previewPr(s.name);
    if (pr === undefined) return { stack: s.name, action: "ignore", reasons: ["not a pr-<N> preview stack"] };
    if (s.updateInProgress)
      return { stack: s.name, pr, action: "skip", reasons: ["an update is in progress"] };

    const reasons: string[] = [];
    const keepReasons: string[] = [];
    const state = prStates.get(pr) ?? "unknown";
    if (state === "closed" || state === "merged") reasons.push(`PR #${pr} is ${state}`);
    else keepReasons.push(state === "open" ? `PR #${pr} is open` : `state of PR #${pr} unknown`);

    const ttl = s.ttlHours ?? defaults.ttlHours;
    const updated = s.lastUpdate === undefined ? NaN : Date.parse(s.lastUpdate);
    if (Number.isNaN(updated)) {
      keepReasons.push(
        s.lastUpdate === undefined ? "never updated: age unknown" : `unreadable lastUpdate ${s.lastUpdate}`,
      );
    } else {
      const age = now.getTime() - updated;
      // Past its TTL: strictly older than TTL hours (a stack exactly TTL hours old is kept).
      if (age > ttl * HOUR_MS) reasons.push(`last updated ${hours(age)} ago, past its ${ttl} h TTL`);
      else keepReasons.push(`last updated ${hours(Math.max(age, 0))} ago, TTL ${ttl} h`);
    }
    return reasons.length > 0
      ? { stack: s.name, pr, action: "destroy", reasons }
      : { stack: s.name, pr, action: "keep", reasons: keepReasons };
  });
}
