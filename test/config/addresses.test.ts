/** The address plan (config/addresses.ts) and the address-space arithmetic behind exposure (config/net.ts). */
import { describe, expect, it } from "vitest";
import {
  HOST_OFFSET,
  ciNetworkPlan,
  dhcpPoolRange,
  hostCapacity,
  ingressRules,
  networkPrefixFor,
  positionalRuleNames,
  ruleName,
  servicesPlan,
} from "../../config/addresses.ts";
import { WORLD_THRESHOLD, addressRange, exposureOf, formatIpv4, parseCidr } from "../../config/net.ts";
import { EPHEMERAL_PORTS } from "../../config/ports.ts";

describe("the CI network: hosts from .11 up, the DHCP pool in the upper half", () => {
  // cidr, hosts that fit, DHCP pool
  it.each([
    ["10.42.10.0/24", 117, "10.42.10.128", "10.42.10.254"],
    ["10.42.10.0/25", 53, "10.42.10.64", "10.42.10.126"],
    ["10.42.10.64/26", 21, "10.42.10.96", "10.42.10.126"],
    ["10.42.10.32/27", 5, "10.42.10.48", "10.42.10.62"],
    ["10.42.10.16/28", 0, "10.42.10.24", "10.42.10.30"],
    ["10.42.0.0/16", 32757, "10.42.128.0", "10.42.255.254"],
  ])("%s holds %i hosts; DHCP pool %s-%s", (cidr, fit, poolStart, poolEnd) => {
    const net = parseCidr(cidr)!;
    expect(hostCapacity(net)).toBe(fit);
    const pool = dhcpPoolRange(net);
    expect([formatIpv4(pool.first), formatIpv4(pool.last)]).toEqual([poolStart, poolEnd]);
    if (fit > 0) {
      const plan = ciNetworkPlan(cidr, fit);
      expect(plan.dhcpPool).toEqual({ start: poolStart, end: poolEnd });
      expect(plan.hosts[0]).toBe(formatIpv4(net.network + HOST_OFFSET));
      // The last host is the address just below the pool.
      expect(plan.hosts.at(-1)).toBe(formatIpv4(pool.first - 1));
    }
    expect(() => ciNetworkPlan(cidr, fit + 1)).toThrow(/^bug in Berth: .* do not fit below the DHCP pool/);
  });

  it.each([
    [1, 27],
    [5, 27],
    [6, 26],
    [21, 26],
    [22, 25],
    [117, 24],
    [118, 23],
    [150, 23],
    [200, 23],
    [5000, 18],
  ])("%i hosts need a /%i", (count, prefix) => {
    expect(networkPrefixFor(count)).toBe(prefix);
    const fits = parseCidr(`10.0.0.0/${prefix}`)!;
    const smaller = parseCidr(`10.0.0.0/${prefix + 1}`)!;
    expect(hostCapacity(fits)).toBeGreaterThanOrEqual(count);
    expect(hostCapacity(smaller)).toBeLessThan(count);
  });
});

describe("the ci-services network", () => {
  it.each([
    ["172.30.0.0/24", "172.30.0.1", "172.30.0.2", "172.30.0.128/25"],
    ["172.30.0.0/26", "172.30.0.1", "172.30.0.2", "172.30.0.32/27"],
    ["172.30.0.8/29", "172.30.0.9", "172.30.0.10", "172.30.0.12/30"],
  ])("%s: gateway %s, dnsmasq %s, dynamic range %s", (subnet, gateway, dns, ipRange) => {
    expect(servicesPlan(subnet)).toMatchObject({ gateway, dnsAddress: dns, ipRange });
    expect(servicesPlan(subnet, "172.30.0.3").dnsAddress).toBe("172.30.0.3");
  });
  it("refuses a subnet smaller than /29 as a bug (validation refuses it first)", () => {
    expect(() => servicesPlan("172.30.0.0/30")).toThrow(/^bug in Berth: /);
  });
});

describe("ingress rules: named by what they allow", () => {
  const input = {
    networkCidr: "10.42.10.0/24",
    adminCidrs: ["198.51.100.0/27", "192.0.2.10/32"],
    registryClientCidrs: ["198.51.100.0/27"],
    mirrorPort: 8443,
    controllerCidr: "198.51.100.40/32",
    basePort: 2200,
    agentsPerHost: 3,
    dockerTlsPort: 2376,
    perBuild: true,
  };

  it("declares each port from its sources, with the old positional names alongside", () => {
    const rules = ingressRules(input);
    expect(rules.map((r) => [ruleName(r), r.description, r.field])).toEqual([
      ["ssh-22-from-198.51.100.0-27", "ssh from 198.51.100.0/27", "berth:openstack.adminCidrs[0]"],
      ["ssh-22-from-192.0.2.10-32", "ssh from 192.0.2.10/32", "berth:openstack.adminCidrs[1]"],
      ["registry-443-from-10.42.10.0-24", "registry-443 from 10.42.10.0/24", "berth:openstack.networkCidr"],
      [
        "registry-443-from-198.51.100.0-27",
        "registry-443 from 198.51.100.0/27",
        "berth:openstack.registryClientCidrs[0]",
      ],
      ["registry-8443-from-10.42.10.0-24", "registry-8443 from 10.42.10.0/24", "berth:openstack.networkCidr"],
      [
        "registry-8443-from-198.51.100.0-27",
        "registry-8443 from 198.51.100.0/27",
        "berth:openstack.registryClientCidrs[0]",
      ],
      [
        "jenkins-agents-2201-2203-from-198.51.100.40-32",
        "jenkins-agents from 198.51.100.40/32",
        "berth:jenkins.controllerCidr",
      ],
      [
        "docker-tls-2376-from-198.51.100.40-32",
        "docker-tls from 198.51.100.40/32",
        "berth:jenkins.controllerCidr",
      ],
      [
        `per-build-agents-${EPHEMERAL_PORTS.first}-${EPHEMERAL_PORTS.last}-from-198.51.100.40-32`,
        "per-build-agents from 198.51.100.40/32",
        "berth:jenkins.controllerCidr",
      ],
    ]);
    expect(positionalRuleNames(rules)).toEqual([
      "ssh-1",
      "ssh-2",
      "registry-443-1",
      "registry-443-2",
      "registry-8443-1",
      "registry-8443-2",
      "jenkins-agents-1",
      "docker-tls-1",
      "per-build-agents-1",
    ]);
  });

  it("removing a source renames no other rule; new names never look like old positional ones", () => {
    const all = ingressRules(input).map(ruleName);
    const fewer = ingressRules({ ...input, adminCidrs: input.adminCidrs.slice(1) }).map(ruleName);
    expect(all.filter((n) => !fewer.includes(n))).toEqual(["ssh-22-from-198.51.100.0-27"]);
    expect(fewer.every((n) => all.includes(n))).toBe(true);
    for (const n of all) expect(n).not.toMatch(/^[a-z-]+(-\d+)?-\d+$/);
  });
});

describe("exposure: the union of the address space a rule set opens", () => {
  const world = (cidrs: string[]) => exposureOf(cidrs).world;
  it.each([
    [["0.0.0.0/0"]],
    [["0.0.0.0/1", "128.0.0.0/1"]],
    [["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"]],
    [["64.0.0.0/2"]],
    [["8.0.0.0/8"]],
    [["203.0.0.0/16", "204.0.0.0/16"]],
    [Array.from({ length: 17 }, (_, i) => `45.${i}.0.0/20`).concat(["45.200.0.0/16"])],
    [["::/0"]],
    [["::/1", "8000::/1"]],
    [["2001:db8::/31"]],
  ])("%j is the world", (cidrs) => {
    expect(world(cidrs)).toBe(true);
  });

  it.each([
    [["198.51.100.0/27", "192.0.2.10/32"]],
    [["203.0.0.0/16"]], // exactly the threshold
    [["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]], // private space
    [["203.0.113.0/24", "203.0.113.0/24", "203.0.113.128/25"]], // overlaps counted once
    [["2001:db8::/32"]],
    [["fd00::/8"]],
  ])("%j is not", (cidrs) => {
    expect(world(cidrs)).toBe(false);
  });

  it("counts public IPv4 addresses exactly, once each", () => {
    expect(exposureOf(["0.0.0.0/0"]).publicIpv4).toBe(2n ** 32n - 592_707_840n); // 2^32 less the non-public blocks;
    expect(exposureOf(["203.0.0.0/16", "203.0.0.0/17"]).publicIpv4).toBe(WORLD_THRESHOLD.ipv4);
    expect(exposureOf(["10.0.0.0/8", "198.51.100.0/24"]).publicIpv4).toBe(256n);
  });

  it("reads bare addresses as hosts and ignores host bits, as Neutron does", () => {
    expect(addressRange("192.0.2.10")).toEqual(addressRange("192.0.2.10/32"));
    expect(addressRange("192.0.2.10/24")).toEqual(addressRange("192.0.2.0/24"));
    expect(addressRange("2001:db8::1/128")?.first).toBe((0x20010db8n << 96n) | 1n);
    expect(addressRange("not-a-cidr")).toBeUndefined();
    expect(exposureOf(["nonsense"]).malformed).toEqual(["nonsense"]);
  });
});
