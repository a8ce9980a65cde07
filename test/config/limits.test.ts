/**
 * Resource limits (config/limits.ts, config/validate-limits.ts): defaults sized from the host
 * flavor, per-kind overrides, and the over-commit rule, which refuses a host whose limits add up
 * beyond `berth:limits.overcommit` with one ConfigError naming the fields, the totals and the fix.
 */
import { describe, expect, it } from "vitest";
import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { LIMIT_KINDS } from "../../config/limits.ts";
import { loadEdited, refusedEdit, type StackConfigMap } from "../support/stacks.ts";
import { summarize } from "../../cli/summary.ts";

const TAG = { agentImageTag: "rev1" };

const limits = (c: StackConfigMap) => (c["berth:limits"] ??= {});
const containers = (c: StackConfigMap) =>
  (limits(c).containers ??= {}) as Record<string, Record<string, unknown>>;
const setKind = (c: StackConfigMap, kind: string, v: Record<string, unknown>) => {
  containers(c)[kind] = v;
};

describe("defaults sized from the flavor", () => {
  it("shipped stacks fit their flavors, every kind limited, builders sharing the rest", () => {
    for (const stack of ["testing", "staging", "production", "pr-17"]) {
      const c = loadStack(PROJECT_ROOT, stack, TAG);
      for (const kind of LIMIT_KINDS) {
        expect(c.limits.containers[kind].memoryMiB, `${stack} ${kind}`).toBeGreaterThanOrEqual(32);
        expect(c.limits.containers[kind].cpus, `${stack} ${kind}`).toBeGreaterThanOrEqual(0.1);
      }
      for (const h of c.limits.hosts) {
        expect(h.memoryMiB, `${stack} ${h.name}`).toBeLessThanOrEqual(c.limits.memoryBudgetMiB);
        expect(h.cpus, `${stack} ${h.name}`).toBeLessThanOrEqual(c.limits.cpuBudget);
      }
    }
  });

  it("testing on m1.large (8192 MiB, 4 vCPUs): the documented sizes", () => {
    const c = loadStack(PROJECT_ROOT, "testing", TAG);
    expect(c.hosts.flavorSize).toEqual({ memoryMiB: 8192, vcpus: 4 });
    expect(c.limits.memoryBudgetMiB).toBe(8192 - 1024);
    expect(c.limits.cpuBudget).toBe(8);
    expect(c.limits.containers.redis).toEqual({ memoryMiB: 112, cpus: 0.25, pids: 256 }); // 7168/64, floor 0.25
    expect(c.limits.containers.mongodb).toEqual({ memoryMiB: 512, cpus: 0.5, pids: 1024 }); // floors
    expect(c.limits.containers.dnsmasq).toEqual({ memoryMiB: 32, cpus: 0.1, pids: 64 });
    expect(c.limits.containers.agent).toEqual({ memoryMiB: 2712, cpus: 2.72, pids: 5424 }); // 2 per MiB
    // The registry host is the fullest: its sums are exactly at (or just under) the budget.
    expect(c.limits.hosts[0]!.memoryMiB).toBe(7168);
  });

  it("berth validate's summary states the host size, the agents' limits and the fullest host's sums", () => {
    expect(summarize(loadStack(PROJECT_ROOT, "staging", TAG))).toContain(
      "  limits:    16384 MiB, 8 vCPUs per host; agents 1562 MiB, 1.61 CPUs each; staging-ci-1: 15354 of 15360 MiB, 16 of 16 CPUs (overcommit memory 1, cpu 2)",
    );
  });

  it("a declared flavorSize sizes the defaults; a bigger host gives the builders more", () => {
    const small = loadStack(PROJECT_ROOT, "testing", TAG);
    const big = loadEdited((c) => {
      c["berth:hosts"]!.flavor = "c2.huge";
      c["berth:hosts"]!.flavorSize = { memoryMiB: 65536, vcpus: 32 };
    });
    expect(big.hosts.flavorSize).toEqual({ memoryMiB: 65536, vcpus: 32 });
    expect(big.limits.containers.redis.memoryMiB).toBe(Math.floor((65536 - 1024) / 64));
    expect(big.limits.containers.agent.memoryMiB).toBeGreaterThan(
      small.limits.containers.agent.memoryMiB * 8,
    );
  });

  it("an override replaces one kind's field; the builders share what is left", () => {
    const c = loadEdited((s) => setKind(s, "mongodb", { memoryMiB: 1024 }));
    expect(c.limits.containers.mongodb).toEqual({ memoryMiB: 1024, cpus: 0.5, pids: 1024 });
    expect(c.limits.configured.mongodb).toEqual({ memoryMiB: true });
    // testing runs two mongodb containers (minimal + production-like): 2 × 512 MiB less for 2 agents.
    expect(c.limits.containers.agent.memoryMiB).toBe(2712 - 512);
  });
});

describe("the over-commit rule", () => {
  const base = loadStack(PROJECT_ROOT, "testing", TAG);
  const host1 = base.limits.hosts[0]!;
  const nginx = base.limits.containers.nginx; // only on the registry host, once
  const memSlack = base.limits.memoryBudgetMiB - host1.memoryMiB;
  const cpuSlack = Math.round((base.limits.cpuBudget - host1.cpus) * 100) / 100;
  // The builders' defaults take what the others leave: pin them, so the others' changes add up.
  const pinAgents = (s: StackConfigMap) => setKind(s, "agent", { ...base.limits.containers.agent });

  it("accepts memory limits that add up to exactly the budget", () => {
    const c = loadEdited((s) => {
      pinAgents(s);
      setKind(s, "nginx", { memoryMiB: nginx.memoryMiB + memSlack });
    });
    expect(c.limits.hosts[0]!.memoryMiB).toBe(7168);
  });

  it("refuses one MiB more, naming the host, the fields, the totals and the fix", () => {
    const e = refusedEdit((s) => {
      pinAgents(s);
      setKind(s, "nginx", { memoryMiB: nginx.memoryMiB + memSlack + 1 });
    });
    expect(e.issues).toHaveLength(1);
    const [issue] = e.issues;
    expect(issue!.path).toBe("berth:limits.containers");
    const m = issue!.message;
    expect(m).toContain("on testing-ci-1 the memory limits add up to 7169 MiB");
    expect(m).toContain(
      `${nginx.memoryMiB + memSlack + 1} MiB nginx (berth:limits.containers.nginx.memoryMiB)`,
    );
    expect(m).toContain("2 × 2712 MiB agent (berth:limits.containers.agent.memoryMiB)");
    expect(m).toContain("2 × 512 MiB mongodb (berth:limits.containers.mongodb.memoryMiB, default)");
    expect(m).toContain(
      "over (8192 MiB of flavor m1.large − 1024 MiB berth:limits.reservedMemoryMiB) × 1 berth:limits.overcommit.memory = 7168 MiB",
    );
    expect(m).toContain("Lower them by 1 MiB in total");
    expect(m).toContain("berth:limits.overcommit.memory: 1.01");
    expect(e.message).toContain("1 problem");
  });

  it("accepts the same limits under the over-commit factor the error suggests", () => {
    const c = loadEdited((s) => {
      pinAgents(s);
      setKind(s, "nginx", { memoryMiB: nginx.memoryMiB + memSlack + 1 });
      limits(s).overcommit = { memory: 1.01 };
    });
    expect(c.limits.hosts[0]!.memoryMiB).toBe(7169);
    expect(c.limits.memoryBudgetMiB).toBe(Math.floor(7168 * 1.01));
  });

  it("CPU: exactly vCPUs × 2.0 is accepted, 0.01 more is refused", () => {
    const at = loadEdited((s) => {
      pinAgents(s);
      setKind(s, "nginx", { cpus: nginx.cpus + cpuSlack });
    });
    expect(at.limits.hosts[0]!.cpus).toBe(8);
    const e = refusedEdit((s) => {
      pinAgents(s);
      setKind(s, "nginx", { cpus: Math.round((nginx.cpus + cpuSlack + 0.01) * 100) / 100 });
    });
    expect(e.issues.map((i) => i.path)).toEqual(["berth:limits.containers"]);
    expect(e.issues[0]!.message).toContain("on testing-ci-1 the CPU limits add up to 8.01 CPUs");
    expect(e.issues[0]!.message).toContain("(berth:limits.containers.nginx.cpus)");
    expect(e.issues[0]!.message).toContain("4 vCPUs of flavor m1.large × 2 berth:limits.overcommit.cpu = 8");
  });

  it("counts per-build containers on per-build hosts only", () => {
    const e = refusedEdit((s) => {
      setKind(s, "perBuild", { memoryMiB: 4096 });
      (s["berth:jenkins"]!.perBuild as Record<string, unknown>).hosts = ["staging-ci-2"];
    }, "staging");
    expect(e.issues.map((i) => i.message.slice(0, 40))).toEqual([
      expect.stringContaining("on staging-ci-2 the memory"),
    ]);
    expect(e.issues[0]!.message).toContain(
      "4 × 4096 MiB perBuild (berth:limits.containers.perBuild.memoryMiB)",
    );
  });
});

describe("refuses nonsense, every problem in one ConfigError before anything is registered", () => {
  it("zero, negative, below Docker's 6 MiB, CPUs beyond the flavor, a reserve as large as the host", () => {
    const e = refusedEdit((s) => {
      setKind(s, "redis", { memoryMiB: 0 });
      setKind(s, "mongodb", { memoryMiB: -512 });
      setKind(s, "dnsmasq", { memoryMiB: 5 });
      setKind(s, "nginx", { cpus: 0 });
      setKind(s, "holder", { cpus: -1 });
      setKind(s, "agent", { cpus: 5 });
      setKind(s, "agnet", { cpus: 1 });
      limits(s).overcommit = { memory: 0 };
    });
    const paths = e.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "berth:limits.containers.redis.memoryMiB",
        "berth:limits.containers.mongodb.memoryMiB",
        "berth:limits.containers.dnsmasq.memoryMiB",
        "berth:limits.containers.nginx.cpus",
        "berth:limits.containers.holder.cpus",
        "berth:limits.containers.agnet",
        "berth:limits.overcommit.memory",
      ]),
    );
    expect(e.message).toContain("berth:limits.containers.dnsmasq.memoryMiB: must be >= 6, got 5");
    expect(e.message).toContain('berth:limits.containers.agnet: unknown key; did you mean "agent"?');

    const f = refusedEdit((s) => {
      setKind(s, "agent", { cpus: 5 });
      limits(s).reservedMemoryMiB = 8192;
    });
    expect(f.issues.map((i) => i.path)).toEqual(["berth:limits.reservedMemoryMiB"]);
    const g = refusedEdit((s) => setKind(s, "agent", { cpus: 5 }));
    expect(g.issues.map((i) => i.path)).toContain("berth:limits.containers.agent.cpus");
    expect(g.message).toContain("5 CPUs is more than flavor m1.large has (4 vCPUs); Docker refuses it");
  });

  it("an unknown flavor without flavorSize names berth:hosts.flavorSize and how to fill it in", () => {
    const e = refusedEdit((s) => (s["berth:hosts"]!.flavor = "g1.custom"));
    expect(e.issues.map((i) => i.path)).toEqual(["berth:hosts.flavorSize"]);
    expect(e.message).toContain('flavor "g1.custom" is not one of the flavors Berth knows');
    expect(e.message).toContain("openstack flavor show g1.custom");
  });

  it("a flavor too small for the builders: the default builder size is refused with the fix", () => {
    const e = refusedEdit((s) => {
      s["berth:hosts"]!.flavor = "m1.small";
      limits(s).reservedMemoryMiB = 256;
    });
    expect(e.issues.map((i) => i.path)).toContain("berth:limits.containers.agent.memoryMiB");
    expect(e.message).toMatch(/the default gives each builder .* \d+ MiB.* at least 512 MiB/);
  });
});
