/**
 * berth-no-world-ingress-total: the rules that open a sensitive port, taken together. And both
 * exposure policies on what the real program declares for a stack, so the pack's ports are the
 * program's (dockerTlsPort, basePort, the per-build range) whatever the stack configures.
 */
import { describe, expect, it } from "vitest";
import { noWorldIngress, noWorldIngressTotal, TYPES } from "../../policy/policies.ts";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { plain, runConfig } from "../../plan/run.ts";
import {
  stackResources,
  UNKNOWN_STRING,
  validateResource,
  validateStack,
  type Props,
  type StackResourceSpec,
} from "./support.ts";

let n = 0;
const rule = (min: number, max: number, remoteIpPrefix: string, extra: Props = {}): StackResourceSpec => ({
  type: TYPES.secGroupRule,
  name: `rule-${++n}`,
  props: {
    direction: "ingress",
    ethertype: "IPv4",
    protocol: "tcp",
    portRangeMin: min,
    portRangeMax: max,
    remoteIpPrefix,
    securityGroupId: "sg",
    ...extra,
  },
});
const ssh = (cidr: string) => rule(22, 22, cidr, { description: `ssh from ${cidr}` });
const total = async (specs: StackResourceSpec[]) =>
  (await validateStack(noWorldIngressTotal, stackResources(specs))).map((v) => v.message);

describe("berth-no-world-ingress-total", () => {
  it.each([
    [
      "two public /16s",
      ["45.0.0.0/16", "45.1.0.0/16"],
      /together open SSH \(port 22\) to 131,072 public IPv4 addresses/,
    ],
    ["a public /16 and a /24", ["45.0.0.0/16", "203.0.113.0/24"], /to 65,792 public IPv4/],
    ["33 public /21s", Array.from({ length: 33 }, (_, i) => `45.${i}.0.0/21`), /to 67,584 public IPv4/],
    ["three IPv6 /33s", ["2001:db8::/33", "2001:db8:8000::/33", "2001:db9::/33"], /public IPv6/],
  ])("reports SSH opened in pieces: %s, naming every rule", async (_case, cidrs, message) => {
    const specs = cidrs.map(ssh);
    const v = await total(specs);
    expect(v).toHaveLength(1);
    expect(v[0]).toMatch(message);
    for (const s of specs) expect(v[0]).toContain(`"${s.name}" (${String(s.props.remoteIpPrefix)})`);
    expect(v[0]).toMatch(/restrict remoteIpPrefix/);
    // No single rule is world-open: the per-rule policy has nothing to say.
    for (const s of specs.filter((x) => !String(x.props.remoteIpPrefix).includes(":")))
      expect(await validateResource(noWorldIngress, s)).toEqual([]);
  });

  it("halves and quarters are each the world by themselves: reported rule by rule", async () => {
    for (const cidrs of [
      ["0.0.0.0/1", "128.0.0.0/1"],
      ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"],
    ]) {
      const specs = cidrs.map(ssh);
      for (const s of specs)
        expect((await validateResource(noWorldIngress, s))[0]?.message).toMatch(/public addresses\).*SSH/);
      expect(await total(specs)).toEqual([]);
    }
  });

  it("reports the per-build range and Berth's rules on configured ports, opened in pieces", async () => {
    const v = await total([
      rule(32768, 60999, "45.0.0.0/16", { description: "per-build-agents from 45.0.0.0/16" }),
      rule(32768, 60999, "45.1.0.0/16", { description: "per-build-agents from 45.1.0.0/16" }),
      rule(12376, 12376, "45.0.0.0/16", { description: "docker-tls from 45.0.0.0/16" }),
      rule(12376, 12376, "45.1.0.0/16", { description: "docker-tls from 45.1.0.0/16" }),
    ]);
    expect(v).toHaveLength(2);
    expect(v.join("\n")).toMatch(/per-build agents \(ports 32768-60999\)/);
    expect(v.join("\n")).toMatch(/Docker API \(mutual TLS\) \(port 12376\)/);
  });

  it("knows a port from the container that publishes it, whatever the rules are called", async () => {
    const v = await total([
      rule(3001, 3001, "45.0.0.0/16"),
      rule(3001, 3001, "45.1.0.0/16"),
      {
        type: TYPES.container,
        name: "agent",
        props: { name: "jenkins-agent-1", image: "x", ports: [{ internal: 22, external: 3001 }] },
      },
    ]);
    expect(v).toHaveLength(1);
    expect(v[0]).toMatch(/container "jenkins-agent-1" \(port 3001\)/);
    // Published on 127.0.0.1 only: not reachable through the security group.
    expect(
      await total([
        rule(3001, 3001, "45.0.0.0/16"),
        rule(3001, 3001, "45.1.0.0/16"),
        {
          type: TYPES.container,
          name: "redis",
          props: { name: "x", image: "x", ports: [{ internal: 3001, external: 3001, ip: "127.0.0.1" }] },
        },
      ]),
    ).toEqual([]);
  });

  it.each([
    ["admins and a bastion", [ssh("198.51.100.0/27"), ssh("192.0.2.10/32")]],
    ["one public /16 in two halves", [ssh("45.0.0.0/17"), ssh("45.0.128.0/17")]],
    ["private space", [ssh("10.0.0.0/8"), ssh("172.16.0.0/12"), ssh("192.168.0.0/16")]],
    ["pieces on a harmless port", [rule(80, 80, "45.0.0.0/16"), rule(80, 80, "45.1.0.0/16")]],
    ["pieces on different ports", [rule(22, 22, "45.0.0.0/16"), rule(443, 443, "45.1.0.0/16")]],
    ["pieces whose source is not known yet (preview)", [ssh("45.0.0.0/16"), rule(22, 22, UNKNOWN_STRING)]],
  ])("accepts %s", async (_case, specs) => {
    expect(await total(specs)).toEqual([]);
  });

  it("leaves a rule open to the world by itself to berth-no-world-ingress (one report, not two)", async () => {
    expect(await total([ssh("0.0.0.0/0"), ssh("198.51.100.0/27")])).toEqual([]);
  });
});

describe("the policies on the real program's rules", () => {
  /** Every resource the program declares for `config`, as the pack sees them. */
  async function resourcesOf(config: BerthConfig): Promise<StackResourceSpec[]> {
    const run = await runConfig(config);
    return run.resources
      .filter((r) => r.custom)
      .map((r) => ({
        type: r.type,
        name: r.name,
        stack: config.stack,
        props: Object.fromEntries(Object.entries(r.inputs).map(([k, v]) => [k, plain(v)])) as Props,
      }));
  }
  async function violations(config: BerthConfig) {
    const specs = await resourcesOf(config);
    const perRule = (await Promise.all(specs.map((s) => validateResource(noWorldIngress, s)))).flat();
    const together = await validateStack(noWorldIngressTotal, stackResources(specs));
    return [...perRule, ...together].map((v) => v.message);
  }

  it("the shipped testing stack passes", async () => {
    expect(await violations(loadStack(PROJECT_ROOT, "testing"))).toEqual([]);
  }, 60_000);

  it("a world-open stack (allowWorld) on its own ports is reported: dockerd TLS 12376, agents from 3001, per-build, SSH in pieces", async () => {
    const c = structuredClone(loadStack(PROJECT_ROOT, "staging"));
    c.openstack.allowWorld = true;
    c.openstack.adminCidrs = ["45.0.0.0/16", "45.1.0.0/16"];
    c.jenkins.controllerCidr = "0.0.0.0/0";
    c.hosts.dockerTlsPort = 12376;
    c.jenkins.basePort = 3000;
    const v = (await violations(c)).join("\n");
    expect(v).toMatch(/port 12376 to 0\.0\.0\.0\/0, which includes Docker API \(mutual TLS\) \(port 12376\)/);
    expect(v).toMatch(/ports 3001-3003 to 0\.0\.0\.0\/0, which includes Jenkins agents \(ports 3001-3003\)/);
    expect(v).toMatch(/ports 32768-60999 to 0\.0\.0\.0\/0, which includes per-build agents/);
    expect(v).toMatch(/together open SSH \(port 22\)/);
  }, 60_000);
});
