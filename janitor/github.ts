/**
 * Pull request states from the GitHub REST API (`GET /repos/{owner}/{repo}/pulls/{n}`), behind an
 * interface so tests use a fake. Failures become `unknown`: the janitor then decides by TTL alone.
 */
import type { PrState } from "./select.ts";

export interface PullRequestStates {
  state(pr: number): Promise<PrState>;
}

/** The subset of `fetch` used here. */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string> },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

export interface GitHubSource {
  prs: PullRequestStates;
  /** Set when PR states cannot be read at all (no token or repository). */
  warning?: string;
}

/** Maps a pull request object of the REST API to its state. */
export function prStateOf(body: unknown): PrState {
  if (typeof body !== "object" || body === null) return "unknown";
  const b = body as { state?: unknown; merged?: unknown; merged_at?: unknown };
  if (b.merged === true || (typeof b.merged_at === "string" && b.merged_at !== "")) return "merged";
  if (b.state === "closed") return "closed";
  if (b.state === "open") return "open";
  return "unknown";
}

/**
 * Reads `GITHUB_TOKEN`, `GITHUB_REPOSITORY` (`owner/repo`) and `GITHUB_API_URL` (GitHub Enterprise;
 * default https://api.github.com) from `env`.
 */
export function githubPullRequests(
  env: Record<string, string | undefined>,
  fetchImpl: FetchLike = fetch as unknown as FetchLike,
): GitHubSource {
  const token = env.GITHUB_TOKEN;
  const repo = env.GITHUB_REPOSITORY;
  const api = (env.GITHUB_API_URL ?? "https://api.github.com").replace(/\/+$/, "");
  if (!token || !repo || !/^[^/\s]+\/[^/\s]+$/.test(repo)) {
    return {
      prs: { state: async () => "unknown" },
      warning:
        "GITHUB_TOKEN and GITHUB_REPOSITORY (owner/repo) are not both set: pull request states are unknown, only TTLs apply",
    };
  }
  const cache = new Map<number, Promise<PrState>>();
  const ask = async (pr: number): Promise<PrState> => {
    try {
      const res = await fetchImpl(`${api}/repos/${repo}/pulls/${pr}`, {
        headers: {
          Accept: "application/vnd.github+json",
          Authorization: `Bearer ${token}`,
          "X-GitHub-Api-Version": "2022-11-28",
          "User-Agent": "berth-janitor",
        },
      });
      if (!res.ok) return "unknown";
      return prStateOf(await res.json());
    } catch {
      return "unknown";
    }
  };
  return {
    prs: {
      state: (pr) => {
        let p = cache.get(pr);
        if (!p) cache.set(pr, (p = ask(pr)));
        return p;
      },
    },
  };
}
