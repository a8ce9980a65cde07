import { describe, expect, it } from "vitest";
import {
  classifyStacks,
  previewPr,
  type Action,
  type PrState,
  type StackInfo,
} from "../../janitor/select.ts";

const NOW = new Date("2025-06-10T12:00:00.000Z");
const H = 3_600_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const defaults = { ttlHours: 72 };

/** The stacks the janitor would destroy, with their PR and reasons, in order. */
function destroyed(
  stacks: readonly StackInfo[],
  states: ReadonlyMap<number, PrState>,
  now: Date,
  d: { ttlHours: number },
): { stack: string; pr: number | undefined; reasons: string[] }[] {
  return classifyStacks(stacks, states, now, d)
    .filter((x) => x.action === "destroy")
    .map((x) => ({ stack: x.stack, pr: x.pr, reasons: x.reasons }));
}

describe("previewPr", () => {
  it.each([
    ["pr-17", 17],
    ["pr-1", 1],
    ["acme/berth/pr-17", 17],
    ["acme/pr-9999999", 9999999],
    ["pr-0", undefined],
    ["pr-017", undefined],
    ["pr-x", undefined],
    ["pr-", undefined],
    ["pr-17-old", undefined],
    ["pr-17/testing", undefined],
    ["xpr-17", undefined],
    ["PR-17", undefined],
    ["pr-12345678", undefined],
    ["testing", undefined],
    ["production", undefined],
  ])("%s → %s", (name, pr) => {
    expect(previewPr(name)).toBe(pr);
  });
});

interface Case {
  name: string;
  stack: StackInfo;
  state?: PrState;
  action: Action;
  reason?: RegExp;
}

const cases: Case[] = [
  // TTL boundary (default 72 h), PR open.
  {
    name: "1 ms before TTL",
    stack: { name: "pr-1", lastUpdate: ago(72 * H - 1) },
    state: "open",
    action: "keep",
  },
  {
    name: "exactly at TTL is kept",
    stack: { name: "pr-1", lastUpdate: ago(72 * H) },
    state: "open",
    action: "keep",
  },
  {
    name: "1 ms past TTL",
    stack: { name: "pr-1", lastUpdate: ago(72 * H + 1) },
    state: "open",
    action: "destroy",
    reason: /past its 72 h TTL/,
  },
  {
    name: "fresh",
    stack: { name: "pr-1", lastUpdate: ago(H) },
    state: "open",
    action: "keep",
    reason: /PR #1 is open/,
  },
  // Per-stack TTL overrides the default.
  {
    name: "own TTL 4 h, 5 h old",
    stack: { name: "pr-2", lastUpdate: ago(5 * H), ttlHours: 4 },
    state: "open",
    action: "destroy",
    reason: /past its 4 h TTL/,
  },
  {
    name: "own TTL 200 h, 100 h old",
    stack: { name: "pr-2", lastUpdate: ago(100 * H), ttlHours: 200 },
    state: "open",
    action: "keep",
  },
  // PR state.
  {
    name: "closed PR, fresh",
    stack: { name: "pr-3", lastUpdate: ago(H) },
    state: "closed",
    action: "destroy",
    reason: /PR #3 is closed/,
  },
  {
    name: "merged PR, fresh",
    stack: { name: "pr-3", lastUpdate: ago(H) },
    state: "merged",
    action: "destroy",
    reason: /PR #3 is merged/,
  },
  {
    name: "unknown PR state, fresh",
    stack: { name: "pr-4", lastUpdate: ago(H) },
    state: "unknown",
    action: "keep",
    reason: /unknown/,
  },
  {
    name: "PR missing from map = unknown",
    stack: { name: "pr-4", lastUpdate: ago(H) },
    action: "keep",
    reason: /unknown/,
  },
  {
    name: "unknown PR state, expired",
    stack: { name: "pr-4", lastUpdate: ago(100 * H) },
    state: "unknown",
    action: "destroy",
    reason: /TTL/,
  },
  // Never updated: age unknown, only a closed PR removes it.
  {
    name: "never updated, open",
    stack: { name: "pr-5" },
    state: "open",
    action: "keep",
    reason: /never updated/,
  },
  { name: "never updated, closed", stack: { name: "pr-5" }, state: "closed", action: "destroy" },
  {
    name: "garbage lastUpdate",
    stack: { name: "pr-5", lastUpdate: "yesterday" },
    state: "open",
    action: "keep",
  },
  {
    name: "lastUpdate in the future",
    stack: { name: "pr-5", lastUpdate: ago(-H) },
    state: "open",
    action: "keep",
  },
  // Update in progress: never touched, whatever else holds.
  {
    name: "in progress, closed and expired",
    stack: { name: "pr-6", lastUpdate: ago(1000 * H), updateInProgress: true },
    state: "merged",
    action: "skip",
    reason: /in progress/,
  },
  // Fully qualified names.
  {
    name: "org/project/pr-7 expired",
    stack: { name: "acme/berth/pr-7", lastUpdate: ago(73 * H) },
    state: "open",
    action: "destroy",
  },
  // Long-lived and look-alike stacks are never selected, however old, whatever "PR" state.
  { name: "production", stack: { name: "production", lastUpdate: ago(10_000 * H) }, action: "ignore" },
  { name: "testing", stack: { name: "testing", lastUpdate: ago(10_000 * H) }, action: "ignore" },
  { name: "pr-x", stack: { name: "pr-x", lastUpdate: ago(10_000 * H) }, action: "ignore" },
  {
    name: "pr-017",
    stack: { name: "pr-017", lastUpdate: ago(10_000 * H) },
    state: "closed",
    action: "ignore",
  },
  {
    name: "pr-17-keep",
    stack: { name: "pr-17-keep", lastUpdate: ago(10_000 * H) },
    state: "closed",
    action: "ignore",
  },
  { name: "pr-0", stack: { name: "pr-0", lastUpdate: ago(10_000 * H) }, state: "closed", action: "ignore" },
];

describe("classifyStacks", () => {
  it.each(cases)("$name → $action", ({ stack, state, action, reason }) => {
    const pr = previewPr(stack.name);
    const states = new Map<number, PrState>(pr !== undefined && state ? [[pr, state]] : []);
    const [d] = classifyStacks([stack], states, NOW, defaults);
    expect(d!.action).toBe(action);
    expect(d!.reasons.length).toBeGreaterThan(0);
    if (reason) expect(d!.reasons.join("; ")).toMatch(reason);
    const selected = destroyed([stack], states, NOW, defaults);
    expect(selected.map((s) => s.stack)).toEqual(action === "destroy" ? [stack.name] : []);
  });

  it("gives every reason that applies", () => {
    const [d] = classifyStacks(
      [{ name: "pr-8", lastUpdate: ago(100 * H) }],
      new Map([[8, "merged"]]),
      NOW,
      defaults,
    );
    expect(d!.reasons).toEqual(["PR #8 is merged", "last updated 100 h ago, past its 72 h TTL"]);
  });

  it("selects exactly the expired preview stacks of a mixed list, in order", () => {
    const stacks: StackInfo[] = [
      { name: "testing", lastUpdate: ago(9000 * H) },
      { name: "pr-10", lastUpdate: ago(H) },
      { name: "pr-11", lastUpdate: ago(80 * H) },
      { name: "staging", lastUpdate: ago(9000 * H) },
      { name: "pr-12", lastUpdate: ago(H) },
      { name: "pr-13", lastUpdate: ago(80 * H), updateInProgress: true },
      { name: "production" },
    ];
    const states = new Map<number, PrState>([
      [10, "open"],
      [11, "open"],
      [12, "closed"],
      [13, "closed"],
    ]);
    expect(destroyed(stacks, states, NOW, defaults)).toEqual([
      { stack: "pr-11", pr: 11, reasons: ["last updated 80 h ago, past its 72 h TTL"] },
      { stack: "pr-12", pr: 12, reasons: ["PR #12 is closed"] },
    ]);
  });

  it("uses the default TTL it is given", () => {
    const stack = { name: "pr-9", lastUpdate: ago(25 * H) };
    const open = new Map<number, PrState>([[9, "open"]]);
    expect(destroyed([stack], open, NOW, { ttlHours: 24 })).toHaveLength(1);
    expect(destroyed([stack], open, NOW, { ttlHours: 48 })).toHaveLength(0);
  });
});
