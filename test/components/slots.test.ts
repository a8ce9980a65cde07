/**
 * Application slots under Pulumi's mocks, with the real program: one security-group rule per slot
 * port and developer CIDR, named by purpose, port and CIDR, and nothing else opening the port; each
 * host's front publishes on its private address only, on ci-services with dnsmasq, carrying the
 * slot's definition for berth-slot; adding a slot changes no server input; the policy pack refuses a
 * slot rule open to the world; `berth plan` shows the slots.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SLOT_FRONT, SLOT_LABEL, slotFrontCommand, slotLabels } from "../../components/slots.ts";
import { noWorldIngress, noWorldIngressTotal, TYPES } from "../../policy/policies.ts";
import { buildPlan, renderPlanMarkdown } from "../../plan/plan.ts";
import { runStack, plain, type StackRun } from "../../plan/run.ts";
import { stackResources, validateResource, validateStack } from "../policy/support.ts";
import { editedStackRoot, type StackConfigMap } from "../support/stacks.ts";

const CONTAINER = "docker:index/container:Container";
const RULE = "openstack:networking/secGroupRule:SecGroupRule";
const SERVER = "openstack:compute/instance:Instance";
const DEV = "203.0.113.0/28";

const withSlots = (cidrs: string[]) => (c: StackConfigMap) => {
  c["berth:services"]!.slots = [
    { name: "shop", port: 8080, health: { http: "/healthz" } },
    {
      name: "api",
      port: 18080,
      health: { command: ["/bin/check", "--fast"], timeoutSeconds: 30 },
      memoryMiB: 256,
      cpus: 0.5,
    },
  ];
  c["berth:services"]!.slotCidrs = cidrs;
};
const labelsOf = (r: { inputs: Record<string, unknown> }) =>
  Object.fromEntries(
    ((plain(r.inputs.labels) as { label: string; value: string }[] | undefined) ?? []).map((l) => [
      plain(l.label),
      plain(l.value),
    ]),
  ) as Record<string, string>;

describe("application slots under mocks (testing stack, two slots)", () => {
  let on: StackRun;
  let off: StackRun;
  let closed: StackRun;
  beforeAll(async () => {
    off = await runStack(
      editedStackRoot(() => undefined),
      "testing",
    );
    on = await runStack(editedStackRoot(withSlots([DEV, "198.51.100.0/27"])), "testing");
    closed = await runStack(editedStackRoot(withSlots([])), "testing");
  });

  it("one rule per slot port and developer CIDR, named by purpose, port and CIDR; nothing else opens a slot port", () => {
    const rules = on.resources.filter((r) => r.type === RULE && /^slot-/.test(String(r.inputs.description)));
    expect(rules.map((r) => r.name).sort()).toEqual(
      [
        "testing-ci-slot-8080-from-203.0.113.0-28",
        "testing-ci-slot-8080-from-198.51.100.0-27",
        "testing-ci-slot-18080-from-203.0.113.0-28",
        "testing-ci-slot-18080-from-198.51.100.0-27",
      ].sort(),
    );
    for (const r of rules) {
      expect(r.inputs.portRangeMin).toBe(r.inputs.portRangeMax);
      expect(r.inputs.protocol).toBe("tcp");
      expect(r.inputs.description).toBe(
        `slot-${String(r.inputs.portRangeMin)} from ${String(r.inputs.remoteIpPrefix)}`,
      );
    }
    for (const r of on.resources.filter((x) => x.type === RULE)) {
      const min = r.inputs.portRangeMin as number | undefined;
      const max = r.inputs.portRangeMax as number | undefined;
      if (min === undefined || max === undefined) continue;
      if ([8080, 18080].some((p) => min <= p && p <= max)) expect(rules).toContain(r);
    }
    // Without developer CIDRs, no rule: nobody reaches the slots.
    expect(
      closed.resources.filter((r) => r.type === RULE && /^slot-/.test(String(r.inputs.description))),
    ).toEqual([]);
    // The other rules are untouched (same names as without slots).
    const names = (run: StackRun) =>
      run.resources
        .filter((r) => r.type === RULE && !/^slot-/.test(String(r.inputs.description)))
        .map((r) => r.name)
        .sort();
    expect(names(on)).toEqual(names(off));
  });

  it("each host's front publishes the slot's port on its private address only, on ci-services with dnsmasq, and carries the definition", () => {
    const fronts = on.resources.filter((r) => r.type === CONTAINER && /^slot-/.test(String(r.inputs.name)));
    expect(fronts.map((r) => r.inputs.name).sort()).toEqual(["slot-api", "slot-shop"]);
    for (const f of fronts) {
      const labels = labelsOf(f);
      expect(labels[SLOT_LABEL]).toBe(SLOT_FRONT);
      expect(labels["org.berth.stack"]).toBe("testing");
      expect(labels["org.berth.host"]).toBe("testing-ci-1");
      const ports = plain(f.inputs.ports) as { internal: number; external: number; ip: string }[];
      expect(ports).toEqual([
        {
          internal: Number(labels[`${SLOT_LABEL}.port`]),
          external: Number(labels[`${SLOT_LABEL}.port`]),
          ip: "10.42.10.11",
          protocol: "tcp",
        },
      ]);
      expect((plain(f.inputs.networksAdvanced) as { name: string }[]).map((n) => plain(n.name))).toEqual([
        "ci-services",
      ]);
      expect(plain(f.inputs.dns)).toEqual(["172.30.0.2"]);
      expect(plain(f.inputs.entrypoints)).toEqual(["socat"]);
      expect((plain(f.inputs.healthcheck) as { tests: string[] }).tests).toEqual([
        "CMD",
        "socat",
        "-u",
        "OPEN:/dev/null",
        `TCP4:127.0.0.1:${labels[`${SLOT_LABEL}.port`] ?? ""},connect-timeout=2`,
      ]);
      expect(String(plain(f.inputs.image))).toMatch(/^sha256:|^[a-z]/);
    }
    const shop = fronts.find((f) => f.inputs.name === "slot-shop");
    const api = fronts.find((f) => f.inputs.name === "slot-api");
    expect(plain(shop?.inputs.command)).toEqual([
      "TCP4-LISTEN:8080,fork,reuseaddr",
      "TCP:slot-shop-app:8080,connect-timeout=5",
    ]);
    expect(labelsOf(shop!)).toMatchObject({
      "org.berth.slot.name": "shop",
      "org.berth.slot.health.http": "/healthz",
      "org.berth.slot.timeout": "120",
      "org.berth.slot.memory-mib": "512",
      "org.berth.slot.cpus": "1",
    });
    expect(labelsOf(api!)).toMatchObject({
      "org.berth.slot.health.command": '["/bin/check","--fast"]',
      "org.berth.slot.timeout": "30",
      "org.berth.slot.memory-mib": "256",
      "org.berth.slot.cpus": "0.5",
    });
    expect(labelsOf(api!)["org.berth.slot.health.http"]).toBeUndefined();
    // The application containers are the builds': the program declares none.
    expect(
      on.resources.filter((r) => r.type === CONTAINER && /^slot-.*-app$/.test(String(r.inputs.name))),
    ).toEqual([]);
  });

  it("adding slots changes no server input (the host layer)", () => {
    const servers = (run: StackRun) =>
      run.resources.filter((r) => r.type === SERVER).map((r) => JSON.stringify(plain(r.inputs.userData)));
    expect(servers(on)).toEqual(servers(off));
  });

  it("the renderers: labels and command follow the definition", () => {
    const slot = {
      name: "x",
      port: 9000,
      health: { http: "/h", timeoutSeconds: 5 },
      memoryMiB: 64,
      cpus: 0.25,
    };
    expect(slotLabels(slot)).toEqual({
      "org.berth.slot": "front",
      "org.berth.slot.name": "x",
      "org.berth.slot.port": "9000",
      "org.berth.slot.timeout": "5",
      "org.berth.slot.memory-mib": "64",
      "org.berth.slot.cpus": "0.25",
      "org.berth.slot.health.http": "/h",
    });
    expect(slotFrontCommand(slot)).toEqual([
      "TCP4-LISTEN:9000,fork,reuseaddr",
      "TCP:slot-x-app:9000,connect-timeout=5",
    ]);
  });

  it("berth plan shows the slots, their ports and CIDRs", () => {
    const plan = buildPlan(on);
    expect(plan.slots?.map((s) => [s.name, s.port, s.cidrs, s.health])).toEqual([
      ["shop", 8080, [DEV, "198.51.100.0/27"], "HTTP GET /healthz"],
      ["api", 18080, [DEV, "198.51.100.0/27"], 'command: ["/bin/check","--fast"]'],
    ]);
    const md = renderPlanMarkdown(plan);
    expect(md).toContain("## Application slots");
    expect(md).toContain(
      `| shop | slot-shop → slot-shop-app | 8080 (every host's private address) | ${DEV}, 198.51.100.0/27 | HTTP GET /healthz, 120 s | 512 MiB, 1 CPUs |`,
    );
    expect(renderPlanMarkdown(buildPlan(off))).not.toContain("## Application slots");
    expect(renderPlanMarkdown(buildPlan(closed))).toContain("none: no rule");
  });
});

describe("the policy pack knows slot ports", () => {
  const slotRule = (cidr: string, port = 18080) => ({
    type: TYPES.secGroupRule,
    name: "slot-rule",
    props: {
      direction: "ingress",
      ethertype: "IPv4",
      protocol: "tcp",
      portRangeMin: port,
      portRangeMax: port,
      remoteIpPrefix: cidr,
      securityGroupId: "sg",
      description: `slot-${String(port)} from ${cidr}`,
    },
  });

  it("refuses a slot rule open to the world, whatever port the stack gave the slot", async () => {
    const v = await validateResource(noWorldIngress, slotRule("0.0.0.0/0"));
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toMatch(
      /opens tcp port 18080 to 0\.0\.0\.0\/0, which includes an application slot \(port 18080\)/,
    );
    expect(await validateResource(noWorldIngress, slotRule(DEV))).toEqual([]);
  });

  it("refuses slot rules that open it to the world in pieces", async () => {
    const specs = ["45.0.0.0/16", "45.1.0.0/16"].map((c, i) => ({
      ...slotRule(c),
      name: `slot-rule-${String(i)}`,
    }));
    const v = await validateStack(noWorldIngressTotal, stackResources(specs));
    expect(v.map((x) => x.message).join("\n")).toMatch(/together open an application slot \(port 18080\)/);
  });
});
