/**
 * Resource limits reach every container the program registers (under Pulumi's mocks): each kind's
 * `memory` (MiB), `memorySwap` (= memory: no swap beyond the limit) and `cpus` are the configured
 * or flavor-sized limits of its kind, on every host, and `berth plan` shows them with each host's
 * sums against the over-commit allowance.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { LimitKind } from "../../config/limits.ts";
import { containersByHost } from "../../plan/containers.ts";
import { buildPlan, renderPlanMarkdown } from "../../plan/plan.ts";
import { plain, runConfig, type StackRun } from "../../plan/run.ts";
import { PIDS_LIMIT_LABEL, limitArgs } from "../../components/docker-host.ts";

const TAG = { agentImageTag: "rev1" };
const runs = new Map<string, StackRun>();

beforeAll(async () => {
  // One mock run at a time: the mocks are process-wide.
  runs.set("staging", await runConfig(loadStack(PROJECT_ROOT, "staging", TAG)));
  const custom = loadStack(PROJECT_ROOT, "testing", TAG);
  custom.limits.containers.redis = { memoryMiB: 300, cpus: 0.3, pids: 100 };
  custom.limits.containers.agent = { memoryMiB: 2000, cpus: 1.25, pids: 3000 };
  runs.set("custom", await runConfig(custom));
}, 120_000);

/** The kind of each container Berth creates on a host, from its name and the configuration. */
function kindOf(run: StackRun, name: string): LimitKind {
  const c = run.config;
  if (/^jenkins-agent-\d+$/.test(name)) return "agent";
  if (c.services.networkHolders.includes(name)) return "holder";
  // An application slot's front is a forwarder with a holder's limits.
  if ((c.services.slots ?? []).some((s) => `slot-${s.name}` === name)) return "holder";
  const named = c.services.productionLike.find((s) => s.name === name);
  if (named) return named.kind;
  const fixed: Record<string, LimitKind> = {
    dnsmasq: "dnsmasq",
    registry: "registry",
    "registry-mirror": "registryMirror",
    "registry-nginx": "nginx",
    "node-exporter": "nodeExporter",
  };
  return fixed[name] ?? (name as LimitKind); // the minimal set is named after its kind
}

describe("every container carries its kind's limits", () => {
  it.each(["staging", "custom"])("%s: memory, memorySwap = memory and cpus, on every host", (name) => {
    const run = runs.get(name)!;
    const byHost = containersByHost(run);
    const kindsSeen = new Set<LimitKind>();
    for (const host of run.config.hosts.names) {
      const containers = byHost.get(host) ?? [];
      expect(containers.length, host).toBeGreaterThan(0);
      for (const r of containers) {
        const cname = String(plain(r.inputs.name));
        const kind = kindOf(run, cname);
        const want = run.config.limits.containers[kind];
        expect(want, `${host} ${cname}`).toBeDefined();
        const labels = (plain(r.inputs.labels) as { label: string; value: string }[] | undefined) ?? [];
        expect(
          {
            memory: plain(r.inputs.memory),
            memorySwap: plain(r.inputs.memorySwap),
            cpus: plain(r.inputs.cpus),
            pids: labels.filter((l) => l.label === PIDS_LIMIT_LABEL).map((l) => l.value),
          },
          `${host} ${cname} (${kind})`,
        ).toEqual({
          memory: want.memoryMiB,
          memorySwap: want.memoryMiB,
          cpus: String(want.cpus),
          pids: [String(want.pids)],
        });
        kindsSeen.add(kind);
      }
    }
    if (name === "staging")
      expect([...kindsSeen].sort()).toEqual(
        [
          "agent",
          "dnsmasq",
          "holder",
          "mongodb",
          "nginx",
          "nodeExporter",
          "postgres",
          "redis",
          "registry",
          "registryMirror",
        ].sort(),
      );
  });

  it("overrides reach their kind only", () => {
    const run = runs.get("custom")!;
    const containers = containersByHost(run).get("testing-ci-1") ?? [];
    const of = (n: string) => containers.find((r) => plain(r.inputs.name) === n)!;
    expect(plain(of("redis").inputs.memory)).toBe(300);
    expect(plain(of("redis-cache-1").inputs.cpus)).toBe("0.3");
    expect(plain(of("jenkins-agent-2").inputs.memory)).toBe(2000);
    expect(plain(of("jenkins-agent-2").inputs.cpus)).toBe("1.25");
    expect(plain(of("mongodb").inputs.memory)).toBe(512);
    const pids = (n: string) =>
      (plain(of(n).inputs.labels) as { label: string; value: string }[]).find(
        (l) => l.label === PIDS_LIMIT_LABEL,
      )?.value;
    expect(pids("redis")).toBe("100");
    expect(pids("redis-cache-1")).toBe("100");
    expect(pids("jenkins-agent-2")).toBe("3000");
    expect(pids("mongodb")).toBe("1024");
  });

  it("limitArgs refuses a limit validation would have refused (a bug check), and is empty without one", () => {
    expect(limitArgs(undefined)).toEqual({});
    expect(() => limitArgs({ memoryMiB: 5, cpus: 1, pids: 100 })).toThrow(/was not validated/);
    expect(() => limitArgs({ memoryMiB: 64, cpus: 0, pids: 100 })).toThrow(/was not validated/);
    expect(() => limitArgs({ memoryMiB: 64, cpus: 1, pids: 0 })).toThrow(/was not validated/);
    expect(limitArgs({ memoryMiB: 64, cpus: 1, pids: 100 }).labels).toEqual([
      { label: PIDS_LIMIT_LABEL, value: "100" },
    ]);
  });
});

describe("berth plan shows the limits", () => {
  it("per container, and per host the sums (per-build containers included) against the allowance", () => {
    const run = runs.get("staging")!;
    const plan = buildPlan(run);
    const h1 = plan.hosts[0]!;
    const agent = h1.containers.find((c) => c.name === "jenkins-agent-1")!;
    expect(agent.limits).toEqual(run.config.limits.containers.agent);
    expect(h1.limits).toEqual({
      memoryMiB: run.config.limits.hosts[0]!.memoryMiB,
      memoryBudgetMiB: 15360,
      cpus: run.config.limits.hosts[0]!.cpus,
      cpuBudget: 16,
      perBuild: 4,
      perBuildPids: run.config.limits.containers.perBuild.pids,
      defaultPids: run.config.limits.defaultPids,
    });
    // The sum counts the 4 per-build containers the plan's container list does not have.
    const listed = h1.containers.reduce((s, c) => s + (c.limits?.memoryMiB ?? 0), 0);
    expect(h1.limits.memoryMiB - listed).toBe(4 * run.config.limits.containers.perBuild.memoryMiB);
    const md = renderPlanMarkdown(plan);
    expect(md).toContain(
      "| host | private IP | flavor | containers | memory limits | CPU limits | Ignition digest |",
    );
    expect(md).toContain(
      `| staging-ci-1 | 10.42.20.11 | m1.xlarge | 17 | ${h1.limits.memoryMiB} of 15360 MiB (4 per-build) |`,
    );
    expect(md).toMatch(/\| jenkins-agent-1 \| .* \| 1562 MiB \| 1\.61 \|/);
    expect(md).not.toContain("No container has a process-count (pids) limit");
    expect(md).toMatch(/\| jenkins-agent-1 \| .* \| 1562 MiB \| 1\.61 \| 3124 \|/);
    expect(md).toContain(
      `per-build containers get ${run.config.limits.containers.perBuild.pids}, containers a job starts itself ${run.config.limits.defaultPids} (\`berth:limits.defaultPids\`)`,
    );
  });
});
