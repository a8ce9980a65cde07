/**
 * Room on a host's `ci-services` network: containers without a fixed address (long-lived agents,
 * network holders, per-build containers) take theirs from the upper half of `berth:services.subnet`
 * (BackendServices' IPAM `ipRange`), less the subnet's broadcast address, which Docker reserves.
 * Validation refuses a configuration that cannot fit, and fixed addresses inside that half, with
 * one ConfigError line each, before anything is registered.
 */
import { cli, issuesOf } from "../support/cli.ts";
import { editedStackRoot, type StackConfigMap } from "../support/stacks.ts";
import { describe, expect, it } from "vitest";
import { loadStack } from "../../config/index.ts";
import { formatIpv4, parseCidr } from "../../config/net.ts";
import { servicesDynamicRange, servicesPlan } from "../../config/addresses.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkServiceAddresses } from "../../components/services.ts";

type Config = StackConfigMap;
const TAG = { agentImageTag: "rev1" };

/**
 * The stack file edited by `edit`, on hosts large enough that the resource limits (config/limits.ts)
 * leave every builder its minimum however many there are: this file is about addresses only.
 */
const rootWith = (edit: (c: Config) => void): string =>
  editedStackRoot((c) => {
    (c["berth:hosts"] as Record<string, unknown>).flavorSize = { memoryMiB: 1048576, vcpus: 256 };
    edit(c);
  });
const jenkins = (c: Config) => c["berth:jenkins"] as Record<string, unknown>;
const services = (c: Config) => c["berth:services"] as Record<string, unknown>;

/** testing (2 agents, 1 network holder, the default /24) with per-build agents capped at `cap`. */
const perBuildRoot = (cap: number, enabled = true) =>
  rootWith((c) => {
    jenkins(c).perBuild = { enabled, instanceCap: cap };
  });

describe("the dynamic range is BackendServices' ipRange, less the broadcast address", () => {
  it.each(["172.30.0.0/24", "172.30.0.0/27", "10.9.8.0/29", "172.16.0.0/20"])("%s", (subnet) => {
    const parsed = parseCidr(subnet)!;
    const range = servicesDynamicRange(parsed);
    const ipRange = checkServiceAddresses({
      subnet,
      gateway: servicesPlan(subnet).gateway,
      dnsAddress: servicesPlan(subnet).dnsAddress,
      productionLike: [],
    });
    expect(`${formatIpv4(range.network)}/${range.prefix}`).toBe(ipRange);
    // Docker reserves the subnet's broadcast address, the last of the range; the gateway and the
    // network address are in the lower half.
    expect(range.room).toBe(parsed.size / 2 - 1);
    expect(range.network + range.size).toBe(parsed.network + parsed.size);
  });
});

describe("shipped stacks", () => {
  it.each([
    ["testing", 2 + 1],
    ["staging", 4 + 3 + 1],
    ["production", 6 + 4 + 1],
    ["pr-17", 1 + 1],
  ] as const)("%s fits: it claims %i of 127 addresses", (stack, claimed) => {
    const c = loadStack(PROJECT_ROOT, stack, TAG);
    const perBuild = c.jenkins.perBuild.enabled ? c.jenkins.perBuild.instanceCap : 0;
    expect(perBuild + c.jenkins.agentsPerHost + c.services.networkHolders.length).toBe(claimed);
    expect(servicesDynamicRange(parseCidr(c.services.subnet)!).room).toBe(127);
  });
});

describe("per-build containers, agents and network holders must fit", () => {
  it("a per-build cap that exactly fills the /24's 127 addresses passes", () => {
    const c = loadStack(perBuildRoot(124), "testing", TAG);
    expect(c.jenkins.perBuild.instanceCap + c.jenkins.agentsPerHost + c.services.networkHolders.length).toBe(
      127,
    );
  });

  it("one more is one ConfigError line naming the fields, the room and the fix", async () => {
    const root = perBuildRoot(125);
    const issues = issuesOf(() => loadStack(root, "testing", TAG));
    expect(issues).toEqual([
      {
        path: "berth:jenkins.perBuild.instanceCap",
        message:
          "125 per-build containers (berth:jenkins.perBuild.instanceCap) + 2 agents (berth:jenkins.agentsPerHost) + 1 network holder (berth:services.networkHolders) " +
          "need 128 addresses on a per-build host's ci-services network, but berth:services.subnet 172.30.0.0/24 hands out 127 " +
          "(172.30.0.128-172.30.0.254: its upper half, less the broadcast address); lower them by 1 in total, or use a /23 or larger subnet",
      },
    ]);
    // What `berth validate` (and `pulumi up`, before registering anything) prints.
    const r = await cli(root, "validate", "testing");
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    const lines = r.err.split("\n");
    expect(lines[0]).toBe(
      'Invalid Berth configuration for stack "testing" (stacks/Pulumi.testing.yaml): 1 problem',
    );
    expect(lines[1]).toBe(`  - ${issues[0]!.path}: ${issues[0]!.message}`);
    // docs/configuration.md shows this very line.
    expect(readFileSync(join(PROJECT_ROOT, "docs", "configuration.md"), "utf8").split("\n")).toContain(
      lines[1],
    );
  });

  it("counts per-build containers only when per-build agents are on", () => {
    expect(loadStack(perBuildRoot(200, false), "testing", TAG).jenkins.perBuild.instanceCap).toBe(200);
  });

  it("without per-build agents, agents and network holders alone: a /27 has 15", () => {
    const small = (holders: string[]) =>
      rootWith((c) => {
        jenkins(c).agentsPerHost = 13;
        services(c).subnet = "172.30.0.0/27";
        services(c).productionLike = [{ name: "redis-cache-1", kind: "redis", address: "172.30.0.11" }];
        services(c).networkHolders = holders;
      });
    expect(loadStack(small(["app-holder", "it-holder"]), "testing").services.networkHolders).toHaveLength(2);
    const issues = issuesOf(() => loadStack(small(["app-holder", "it-holder", "e2e-holder"]), "testing"));
    expect(issues).toEqual([
      {
        path: "berth:jenkins.agentsPerHost",
        message:
          "13 agents (berth:jenkins.agentsPerHost) + 3 network holders (berth:services.networkHolders) " +
          "need 16 addresses on each host's ci-services network, but berth:services.subnet 172.30.0.0/27 hands out 15 " +
          "(172.30.0.16-172.30.0.30: its upper half, less the broadcast address); lower them by 1 in total, or use a /26 or larger subnet",
      },
    ]);
  });

  it("suggests a subnet that fits: the check passes with it", () => {
    const root = rootWith((c) => {
      jenkins(c).perBuild = { enabled: true, instanceCap: 256 };
      jenkins(c).agentsPerHost = 64;
    });
    const message = issuesOf(() => loadStack(root, "testing", TAG))[0]?.message ?? "";
    expect(message).toContain("256 per-build containers");
    expect(message).toContain("need 321 addresses");
    const prefix = /use a \/(\d+) or larger subnet$/.exec(message)?.[1];
    expect(prefix).toBe("22");
    const fixed = rootWith((c) => {
      jenkins(c).perBuild = { enabled: true, instanceCap: 256 };
      jenkins(c).agentsPerHost = 64;
      services(c).subnet = `172.30.0.0/${prefix}`;
    });
    expect(loadStack(fixed, "testing", TAG).services.subnet).toBe("172.30.0.0/22");
    const tooSmall = rootWith((c) => {
      jenkins(c).perBuild = { enabled: true, instanceCap: 256 };
      jenkins(c).agentsPerHost = 64;
      services(c).subnet = "172.30.0.0/23";
    });
    expect(issuesOf(() => loadStack(tooSmall, "testing", TAG)).map((i) => i.path)).toEqual([
      "berth:jenkins.perBuild.instanceCap",
    ]);
  });
});

describe("fixed addresses stay below the dynamic range", () => {
  it("refuses dnsmasq or a production-like service in the upper half, as BackendServices would", () => {
    const root = rootWith((c) => {
      services(c).dnsAddress = "172.30.0.128";
      services(c).productionLike = [
        { name: "mongodb-cluster-a-node-1", kind: "mongodb", address: "172.30.0.127" },
        { name: "redis-cache-1", kind: "redis", address: "172.30.0.200" },
      ];
    });
    const issues = issuesOf(() => loadStack(root, "testing"));
    const hint =
      "the upper half of berth:services.subnet, which ci-services hands out to agents, network holders and build containers; use an address below 172.30.0.128";
    expect(issues).toEqual([
      { path: "berth:services.dnsAddress", message: `172.30.0.128 is in 172.30.0.128/25, ${hint}` },
      {
        path: "berth:services.productionLike[1].address",
        message: `172.30.0.200 is in 172.30.0.128/25, ${hint}`,
      },
    ]);
    // The component refuses the same addresses (and accepts .127, the last of the lower half).
    const args = { subnet: "172.30.0.0/24", gateway: "172.30.0.1", dnsAddress: "172.30.0.2" };
    for (const address of ["172.30.0.128", "172.30.0.200"])
      expect(() =>
        checkServiceAddresses({ ...args, productionLike: [{ name: "x", kind: "redis", address }] }),
      ).toThrow(/dynamically/);
    expect(
      checkServiceAddresses({
        ...args,
        productionLike: [{ name: "x", kind: "redis", address: "172.30.0.127" }],
      }),
    ).toBe("172.30.0.128/25");
  });
});
