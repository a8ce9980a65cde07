/**
 * Networks, addresses and exposure (config/validate-network.ts), through the real CLI: each bad
 * configuration is refused with a message naming the field and the fix, never a stack trace; each
 * good one validates.
 */
import { describe, expect, it } from "vitest";
import { cli } from "../support/cli.ts";
import { editedStackRoot, type StackConfigMap } from "../support/stacks.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";

type Config = StackConfigMap;
const os = (c: Config) => c["berth:openstack"]!;
const jenkins = (c: Config) => c["berth:jenkins"]!;
const services = (c: Config) => c["berth:services"]!;

const rootWith = (edit: (c: Config) => void): string => editedStackRoot(edit);

/** `berth validate testing` of the edited stack: its exit code and each `path: message` line. */
async function validate(edit: (c: Config) => void): Promise<{ code: number; lines: string[]; err: string }> {
  const r = await cli(rootWith(edit), "validate", "testing");
  expect(r.err).not.toMatch(/\n\s+at /); // never a stack trace
  const lines = r.err
    .split("\n")
    .filter((l) => l.startsWith("  - "))
    .map((l) => l.slice(4));
  return { code: r.code, lines, err: r.err };
}

const publicSixteens = (n: number) => Array.from({ length: n }, (_, i) => `45.${i}.0.0/16`);

describe("refused: exposure judged by the union of the address space", () => {
  it.each<[string, (c: Config) => void, string, RegExp]>([
    ["adminCidrs /0", (c) => (os(c).adminCidrs = ["0.0.0.0/0"]), "berth:openstack.adminCidrs[0]", /SSH/],
    [
      "adminCidrs in halves",
      (c) => (os(c).adminCidrs = ["0.0.0.0/1", "128.0.0.0/1"]),
      "berth:openstack.adminCidrs[0]",
      /SSH \(tcp port 22\)/,
    ],
    [
      "adminCidrs as two public /16s (each fine alone)",
      (c) => (os(c).adminCidrs = publicSixteens(2)),
      "berth:openstack.adminCidrs",
      /131,072 public addresses \(45\.0\.0\.0\/16, 45\.1\.0\.0\/16\)/,
    ],
    [
      "controllerCidr half the Internet",
      (c) => (jenkins(c).controllerCidr = "128.0.0.0/1"),
      "berth:jenkins.controllerCidr",
      /Jenkins agents \(tcp ports 2201-2202\)/,
    ],
    [
      "registryClientCidrs in quarters",
      (c) => (os(c).registryClientCidrs = ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"]),
      "berth:openstack.registryClientCidrs[1]",
      /registry HTTPS \(tcp port 443\)/,
    ],
    [
      "registryClientCidrs as many /16s together with the CI network",
      (c) => (os(c).registryClientCidrs = publicSixteens(3)),
      "berth:openstack.registryClientCidrs",
      /196,608 public addresses/,
    ],
  ])("%s", async (_case, edit, path, what) => {
    const r = await validate(edit);
    expect(r.code).toBe(1);
    const line = r.lines.find((l) => l.startsWith(`${path}: `));
    expect(line, r.err).toBeDefined();
    expect(line).toMatch(what);
    expect(line).toContain("berth:openstack.allowWorld: true");
    // The private CI network shares the registry's ports but adds no public space: not blamed.
    expect(r.lines.filter((l) => l.startsWith("berth:openstack.networkCidr: "))).toEqual([]);
  });

  it("a world-open networkCidr is refused too (it is the registry's source)", async () => {
    const r = await validate((c) => (os(c).networkCidr = "64.0.0.0/3"));
    expect(r.code).toBe(1);
    expect(
      r.lines.find((l) => l.startsWith("berth:openstack.networkCidr: opens registry HTTPS")),
    ).toBeDefined();
  });
});

describe("refused: overlapping and reserved networks", () => {
  it.each<[string, (c: Config) => void, string, RegExp]>([
    [
      "networkCidr inside docker0",
      (c) => (os(c).networkCidr = "172.17.8.0/24"),
      "berth:openstack.networkCidr",
      /docker0 \(172\.17\.0\.0\/16, bip 172\.17\.0\.1\/16\)/,
    ],
    [
      "networkCidr containing docker0",
      (c) => (os(c).networkCidr = "172.16.0.0/12"),
      "berth:openstack.networkCidr",
      /docker0/,
    ],
    [
      "networkCidr in loopback",
      (c) => (os(c).networkCidr = "127.1.0.0/24"),
      "berth:openstack.networkCidr",
      /loopback/,
    ],
    [
      "services.subnet inside docker0",
      (c) => (services(c).subnet = "172.17.0.0/24"),
      "berth:services.subnet",
      /docker0/,
    ],
    [
      "services.subnet in loopback",
      (c) => (services(c).subnet = "127.0.0.0/24"),
      "berth:services.subnet",
      /loopback/,
    ],
    [
      "services.subnet link-local",
      (c) => (services(c).subnet = "169.254.169.0/24"),
      "berth:services.subnet",
      /link-local/,
    ],
    [
      "services.subnet multicast",
      (c) => (services(c).subnet = "239.1.1.0/24"),
      "berth:services.subnet",
      /multicast/,
    ],
    [
      "services.subnet overlapping controllerCidr",
      (c) => (jenkins(c).controllerCidr = "172.30.0.40/32"),
      "berth:services.subnet",
      /overlaps berth:jenkins\.controllerCidr 172\.30\.0\.40\/32/,
    ],
    [
      "services.subnet overlapping networkCidr",
      (c) => (services(c).subnet = "10.42.10.0/25"),
      "berth:services.subnet",
      /overlaps berth:openstack\.networkCidr 10\.42\.10\.0\/24; pick a separate range/,
    ],
    [
      "controllerCidr inside docker0",
      (c) => (jenkins(c).controllerCidr = "172.17.0.5/32"),
      "berth:jenkins.controllerCidr",
      /docker0/,
    ],
  ])("%s", async (_case, edit, path, what) => {
    const r = await validate(edit);
    expect(r.code).toBe(1);
    const line = r.lines.find((l) => l.startsWith(`${path}: `) && what.test(l));
    expect(line, r.err).toBeDefined();
  });
});

describe("refused: hosts inside the DHCP pool", () => {
  it.each<[string, number, RegExp]>([
    [
      "10.42.10.0/24",
      150,
      /10\.42\.10\.11-10\.42\.10\.160, but 10\.42\.10\.128-10\.42\.10\.254 .* DHCP pool.*117 hosts fit\. Use a \/23 or larger/,
    ],
    ["10.42.10.0/24", 118, /117 hosts fit\. Use a \/23/],
    ["10.42.10.64/26", 22, /21 hosts fit\. Use a \/25/],
    ["10.42.10.16/28", 1, /0 hosts fit\. Use a \/27/],
    ["10.42.10.0/29", 1, /past the end of the network.*Use a \/27/],
    ["10.42.10.0/24", 200, /Use a \/23/],
  ])("%s with %i hosts", async (cidr, count, what) => {
    const r = await validate((c) => {
      os(c).networkCidr = cidr;
      c["berth:hosts"]!.count = count;
    });
    expect(r.code).toBe(1);
    const line = r.lines.find((l) => l.startsWith("berth:openstack.networkCidr: "));
    expect(line, r.err).toMatch(what);
    expect(line).toContain(`berth:hosts.count ${count}`);
  });
});

describe("refused: duplicate rules (Neutron refuses identical security-group rules)", () => {
  it.each<[string, (c: Config) => void, string, RegExp]>([
    [
      "a repeated admin CIDR",
      (c) => (os(c).adminCidrs = ["198.51.100.0/27", "192.0.2.0/24", "198.51.100.0/27"]),
      "berth:openstack.adminCidrs[2]",
      /repeats berth:openstack\.adminCidrs\[0\] \(198\.51\.100\.0\/27\); remove it/,
    ],
    [
      "a repeated registry client",
      (c) => (os(c).registryClientCidrs = ["192.0.2.0/24", "192.0.2.0/24"]),
      "berth:openstack.registryClientCidrs[1]",
      /repeats/,
    ],
    [
      "the CI network listed as a registry client",
      (c) => (os(c).registryClientCidrs = ["10.42.10.0/24"]),
      "berth:openstack.registryClientCidrs[0]",
      /is berth:openstack\.networkCidr, which reaches the registry already; remove it/,
    ],
    [
      "part of the CI network listed as a registry client",
      (c) => (os(c).registryClientCidrs = ["10.42.10.128/25"]),
      "berth:openstack.registryClientCidrs[0]",
      /is inside berth:openstack\.networkCidr/,
    ],
    [
      "a repeated DNS server",
      (c) => (os(c).dnsServers = ["9.9.9.9", "9.9.9.9"]),
      "berth:openstack.dnsServers[1]",
      /repeats/,
    ],
    [
      "the controller as a registry client with the mirror on dockerd's TLS port",
      (c) => {
        os(c).registryClientCidrs = ["198.51.100.40/32"];
        c["berth:registry"]!.pullThroughCache = { port: 2376 };
      },
      "berth:jenkins.controllerCidr",
      /would open tcp port 2376 from 198\.51\.100\.40\/32 a second time \(as "docker-tls", already "registry-2376"/,
    ],
  ])("%s", async (_case, edit, path, what) => {
    const r = await validate(edit);
    expect(r.code).toBe(1);
    const line = r.lines.find((l) => l.startsWith(`${path}: `));
    expect(line, r.err).toMatch(what);
  });

  it("reports a repeated entry once, not again as a duplicate rule", async () => {
    const r = await validate((c) => (os(c).adminCidrs = ["198.51.100.0/27", "198.51.100.0/27"]));
    expect(r.lines).toHaveLength(1);
  });
});

describe("accepted", () => {
  it.each<[string, (c: Config) => void]>([
    ["one public /16 of admins (the threshold)", (c) => (os(c).adminCidrs = ["45.0.0.0/16"])],
    [
      "private space of any size",
      (c) => (os(c).adminCidrs = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]),
    ],
    [
      "a registry client range containing the CI network",
      (c) => (os(c).registryClientCidrs = ["10.0.0.0/8"]),
    ],
    [
      "117 hosts on a /24 (a fleet that size takes reboot turns from a lock server, not weekly windows)",
      (c) => {
        c["berth:hosts"]!.count = 117;
        c["berth:hosts"]!.updates = {
          strategy: "fleet_lock",
          fleetLockUrl: "https://fleet-lock.example.com",
        };
      },
    ],
    [
      "5 hosts on a /27",
      (c) => {
        os(c).networkCidr = "10.42.10.32/27";
        c["berth:hosts"]!.count = 5;
      },
    ],
    [
      "the world, with allowWorld",
      (c) => {
        os(c).adminCidrs = ["0.0.0.0/1", "128.0.0.0/1"];
        jenkins(c).controllerCidr = "0.0.0.0/0";
        os(c).allowWorld = true;
      },
    ],
  ])("%s", async (_case, edit) => {
    const r = await validate(edit);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
  });

  it("a stack at the limits plans cleanly", async () => {
    const root = rootWith((c) => {
      os(c).networkCidr = "10.42.10.32/27";
      c["berth:hosts"]!.count = 5;
      os(c).registryClientCidrs = ["10.0.0.0/8", "45.0.0.0/16"];
    });
    const out = join(root, "out", "plan"); // removed with the root
    const r = await cli(root, "plan", "testing", "--out", out);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const plan = JSON.parse(readFileSync(join(out, "plan.json"), "utf8")) as {
      hosts: { privateIp: string }[];
      resources: { type: string; inputs: { allocationPools?: unknown } }[];
    };
    expect(plan.hosts.map((h) => h.privateIp)).toEqual([43, 44, 45, 46, 47].map((n) => `10.42.10.${n}`));
    const subnet = plan.resources.find((r) => r.type === "openstack:networking/subnet:Subnet");
    expect(subnet?.inputs.allocationPools).toEqual([{ end: "10.42.10.62", start: "10.42.10.48" }]);
  }, 120_000);
});
