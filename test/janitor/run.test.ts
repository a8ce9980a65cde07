import { describe, expect, it } from "vitest";
import { defaultPreviewTtl, runJanitor } from "../../janitor/run.ts";
import { githubPullRequests, prStateOf, type FetchLike } from "../../janitor/github.ts";
import type { PrState, StackInfo } from "../../janitor/select.ts";
import { parseTtlHours, type StackAdapter } from "../../janitor/stacks.ts";
import { PROJECT_ROOT } from "../../config/root.ts";

const NOW = "2025-06-10T12:00:00.000Z";
const ago = (h: number) => new Date(Date.parse(NOW) - h * 3_600_000).toISOString();

/** A fake Pulumi: records every call, in order. */
class FakeStacks implements StackAdapter {
  calls: string[] = [];
  constructor(
    private stacks: StackInfo[],
    private ttl: Record<string, number> = {},
    private failDestroy = new Set<string>(),
  ) {}
  async listStacks() {
    this.calls.push("list");
    return this.stacks;
  }
  async previewTtlHours(stack: string) {
    this.calls.push(`ttl ${stack}`);
    return this.ttl[stack];
  }
  async destroy(stack: string, onOutput?: (s: string) => void) {
    this.calls.push(`destroy ${stack}`);
    onOutput?.(`Destroying (${stack})\n`);
    if (this.failDestroy.has(stack)) throw new Error("provider unreachable");
  }
  async remove(stack: string) {
    this.calls.push(`remove ${stack}`);
  }
}

const prs = (states: Record<number, PrState>) => {
  const asked: number[] = [];
  return { asked, source: { state: async (n: number) => (asked.push(n), states[n] ?? "unknown") } };
};

async function run(argv: string[], stacks: StackAdapter, states: Record<number, PrState>) {
  const out: string[] = [];
  const err: string[] = [];
  const p = prs(states);
  const code = await runJanitor(
    argv,
    { out: (s) => out.push(s), err: (s) => err.push(s) },
    {
      root: PROJECT_ROOT,
      stacks,
      prs: p.source,
      defaultTtlHours: 72,
    },
  );
  return { code, out: out.join("\n"), err: err.join("\n"), asked: p.asked };
}

const fleet = (): StackInfo[] => [
  { name: "testing", lastUpdate: ago(5000) },
  { name: "staging", lastUpdate: ago(5000) },
  { name: "production", lastUpdate: ago(5000) },
  { name: "pr-1", lastUpdate: ago(1) }, // open, fresh → keep
  { name: "pr-2", lastUpdate: ago(1) }, // merged → destroy
  { name: "pr-3", lastUpdate: ago(100) }, // open, expired → destroy
  { name: "pr-4", lastUpdate: ago(100), updateInProgress: true }, // skip
  { name: "pr-5", lastUpdate: ago(10) }, // own TTL 6 h → destroy
  { name: "pr-x", lastUpdate: ago(5000) }, // not a preview stack
];
const states: Record<number, PrState> = { 1: "open", 2: "merged", 3: "open", 4: "closed", 5: "open" };

describe("berth janitor", () => {
  it("dry run (default) prints what it would destroy and destroys nothing", async () => {
    const fake = new FakeStacks(fleet(), { "pr-5": 6 });
    const r = await run(["--now", NOW], fake, states);
    expect(r.code).toBe(0);
    expect(fake.calls.filter((c) => /^(destroy|remove)/.test(c))).toEqual([]);
    expect(r.out).toContain("dry run");
    expect(r.out).toMatch(/^destroy +pr-2: PR #2 is merged$/m);
    expect(r.out).toMatch(/^destroy +pr-3: last updated 100 h ago, past its 72 h TTL$/m);
    expect(r.out).toMatch(/^destroy +pr-5: last updated 10 h ago, past its 6 h TTL$/m);
    expect(r.out).toMatch(/^keep +pr-1:/m);
    expect(r.out).toMatch(/^skip +pr-4: an update is in progress$/m);
    expect(r.out).toContain("3 to destroy");
    // Long-lived stacks are not even listed as candidates, and their "PRs" are never looked up.
    expect(r.out).not.toMatch(/production|staging|testing:|pr-x/);
    expect(r.asked.sort()).toEqual([1, 2, 3, 4, 5]);
    // TTLs are read for preview stacks only.
    expect(fake.calls.filter((c) => c.startsWith("ttl"))).toEqual(
      ["pr-1", "pr-2", "pr-3", "pr-4", "pr-5"].map((s) => `ttl ${s}`),
    );
  });

  it("--apply destroys then removes each selected stack, in order, and nothing else", async () => {
    const fake = new FakeStacks(fleet(), { "pr-5": 6 });
    const r = await run(["--apply", "--now", NOW], fake, states);
    expect(r.code).toBe(0);
    expect(fake.calls.filter((c) => /^(destroy|remove)/.test(c))).toEqual([
      "destroy pr-2",
      "remove pr-2",
      "destroy pr-3",
      "remove pr-3",
      "destroy pr-5",
      "remove pr-5",
    ]);
    expect(r.out).toContain("Destroying (pr-2)");
    expect(r.out).toContain("removed pr-5");
  });

  it("keeps a stack whose destroy failed, carries on with the others, and exits 1", async () => {
    const fake = new FakeStacks(fleet(), { "pr-5": 6 }, new Set(["pr-2"]));
    const r = await run(["--apply", "--now", NOW], fake, states);
    expect(r.code).toBe(1);
    expect(fake.calls).not.toContain("remove pr-2");
    expect(fake.calls).toContain("remove pr-3");
    expect(r.err).toMatch(/destroying pr-2 failed; the stack is kept: provider unreachable/);
  });

  it("the clock decides: the same stack is kept an hour earlier", async () => {
    const stacks = [{ name: "pr-3", lastUpdate: "2025-06-07T11:00:00.000Z" }];
    const early = await run(["--apply", "--now", "2025-06-10T11:00:00.000Z"], new FakeStacks(stacks), {
      3: "open",
    });
    expect(early.out).toMatch(/^keep +pr-3:/m);
    const late = new FakeStacks(stacks);
    await run(["--apply", "--now", "2025-06-10T11:00:00.001Z"], late, { 3: "open" });
    expect(late.calls).toContain("destroy pr-3");
  });

  it("rejects a bad --now and unknown flags", async () => {
    expect((await run(["--now", "tomorrow"], new FakeStacks([]), {})).code).toBe(2);
    expect((await run(["--force"], new FakeStacks([]), {})).code).toBe(2);
    expect((await run(["pr-1"], new FakeStacks([]), {})).code).toBe(2);
  });

  it("a PR lookup that throws counts as unknown (TTL alone decides)", async () => {
    const fake = new FakeStacks([{ name: "pr-1", lastUpdate: ago(1) }]);
    const out: string[] = [];
    const code = await runJanitor(
      ["--apply", "--now", NOW],
      { out: (s) => out.push(s), err: () => {} },
      {
        root: PROJECT_ROOT,
        stacks: fake,
        prs: { state: async () => Promise.reject(new Error("rate limited")) },
        defaultTtlHours: 72,
      },
    );
    expect(code).toBe(0);
    expect(fake.calls).not.toContain("destroy pr-1");
    expect(out.join("\n")).toMatch(/state of PR #1 unknown/);
  });
});

describe("janitor defaults and adapters", () => {
  it("default TTL comes from the shipped testing stack (schema default 72)", () => {
    expect(defaultPreviewTtl(PROJECT_ROOT)).toBe(72);
    expect(defaultPreviewTtl("/nonexistent")).toBe(72);
  });

  it.each([
    ["24", 24],
    [" 72 ", 72],
    ["0", undefined],
    ["721", undefined],
    ["1.5", undefined],
    ["abc", undefined],
  ])("parseTtlHours(%j) = %s", (v, n) => {
    expect(parseTtlHours(v)).toBe(n);
  });

  it.each([
    [{ state: "open", merged: false }, "open"],
    [{ state: "closed", merged: false, merged_at: null }, "closed"],
    [{ state: "closed", merged: true }, "merged"],
    [{ state: "closed", merged_at: "2025-01-01T00:00:00Z" }, "merged"],
    [{ message: "Not Found" }, "unknown"],
    [null, "unknown"],
  ])("prStateOf(%j) = %s", (body, state) => {
    expect(prStateOf(body)).toBe(state);
  });

  it("asks GET /repos/{owner}/{repo}/pulls/{n} with the token, once per PR", async () => {
    const urls: string[] = [];
    const fetchImpl: FetchLike = async (url, init) => {
      urls.push(url);
      expect(init.headers.Authorization).toBe("Bearer t0k");
      if (url.endsWith("/pulls/404")) return { ok: false, status: 404, json: async () => ({}) };
      return { ok: true, status: 200, json: async () => ({ state: "closed", merged: true }) };
    };
    const gh = githubPullRequests({ GITHUB_TOKEN: "t0k", GITHUB_REPOSITORY: "acme/berth" }, fetchImpl);
    expect(gh.warning).toBeUndefined();
    expect(await gh.prs.state(17)).toBe("merged");
    expect(await gh.prs.state(17)).toBe("merged");
    expect(await gh.prs.state(404)).toBe("unknown");
    expect(urls).toEqual([
      "https://api.github.com/repos/acme/berth/pulls/17",
      "https://api.github.com/repos/acme/berth/pulls/404",
    ]);
  });

  it("without a token every state is unknown, with a warning, and nothing is fetched", async () => {
    const gh = githubPullRequests({ GITHUB_REPOSITORY: "acme/berth" }, async () => {
      throw new Error("must not fetch");
    });
    expect(gh.warning).toMatch(/GITHUB_TOKEN/);
    expect(await gh.prs.state(1)).toBe("unknown");
  });

  it("a network error is unknown", async () => {
    const gh = githubPullRequests({ GITHUB_TOKEN: "t", GITHUB_REPOSITORY: "a/b" }, async () => {
      throw new Error("ECONNRESET");
    });
    expect(await gh.prs.state(1)).toBe("unknown");
  });
});
