/** components/network.ts (CiNetwork) in every shipped stack: the security-group rules. */
import { describe, expect, it } from "vitest";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { runConfig, plain, type StackRun } from "../../plan/run.ts";
import { STACKS, ofType, stackRuns } from "../support/stack-runs.ts";

const get = stackRuns();

describe.each(STACKS)("stack %s", (stack) => {
  it("opens no port to the world; each port only from its sources", () => {
    const run = get(stack);
    const c = run.config;
    const rules = ofType(run, "openstack:networking/secGroupRule:SecGroupRule").map((r) => ({
      name: r.name,
      min: plain(r.inputs.portRangeMin),
      max: plain(r.inputs.portRangeMax),
      cidr: plain(r.inputs.remoteIpPrefix),
      protocol: plain(r.inputs.protocol),
    }));
    expect(rules.filter((r) => r.cidr === "0.0.0.0/0" || r.cidr === undefined)).toEqual([]);
    const from = (port: number) =>
      rules.filter((r) => (r.min as number) <= port && port <= (r.max as number)).map((r) => r.cidr);
    expect(from(22).sort()).toEqual([...c.openstack.adminCidrs].sort());
    expect(from(443).sort()).toEqual([c.openstack.networkCidr, ...c.openstack.registryClientCidrs].sort());
    expect(from(c.jenkins.basePort + 1)).toEqual([c.jenkins.controllerCidr]);
    expect(from(c.jenkins.basePort + c.jenkins.agentsPerHost)).toEqual([c.jenkins.controllerCidr]);
    expect(from(c.jenkins.basePort + c.jenkins.agentsPerHost + 1)).toEqual([]);
    expect(from(c.hosts.dockerTlsPort)).toEqual([c.jenkins.controllerCidr]);
    expect(from(2375)).toEqual([]); // the plain Docker API is never exposed
    for (const port of [6379, 27017, 5432]) expect(from(port)).toEqual([]);
  });
});

describe("security-group rules are named by what they allow", () => {
  const RULE = "openstack:networking/secGroupRule:SecGroupRule";
  const rulesOf = (run: StackRun) =>
    new Map(ofType(run, RULE).map((r) => [String(plain(r.inputs.description)), r]));

  it("names each rule by purpose, ports and source, and keeps its old positional name as its one alias", () => {
    const run = get("production");
    const rules = rulesOf(run);
    // production lists two admin CIDRs; before, they were ssh-1 and ssh-2 in that order.
    const expected: [string, string, string][] = [
      ["ssh from 198.51.100.0/27", "production-ci-ssh-22-from-198.51.100.0-27", "production-ci-ssh-1"],
      ["ssh from 192.0.2.10/32", "production-ci-ssh-22-from-192.0.2.10-32", "production-ci-ssh-2"],
      [
        "registry-443 from 10.42.30.0/24",
        "production-ci-registry-443-from-10.42.30.0-24",
        "production-ci-registry-443-1",
      ],
      [
        "registry-8443 from 198.51.100.0/27",
        "production-ci-registry-8443-from-198.51.100.0-27",
        "production-ci-registry-8443-2",
      ],
      [
        "jenkins-agents from 198.51.100.40/32",
        "production-ci-jenkins-agents-2201-2204-from-198.51.100.40-32",
        "production-ci-jenkins-agents-1",
      ],
      [
        "docker-tls from 198.51.100.40/32",
        "production-ci-docker-tls-2376-from-198.51.100.40-32",
        "production-ci-docker-tls-1",
      ],
      [
        "per-build-agents from 198.51.100.40/32",
        "production-ci-per-build-agents-32768-60999-from-198.51.100.40-32",
        "production-ci-per-build-agents-1",
      ],
    ];
    for (const [description, name, old] of expected) {
      const r = rules.get(description);
      expect(r?.name, description).toBe(name);
      // The same URN as before but for the name: same type, same parent (the CiNetwork).
      expect(r?.aliases).toEqual([r!.urn.replace(/::[^:]+$/, `::${old}`)]);
    }
    // Each old name is the alias of one rule only (Pulumi refuses two resources claiming one URN).
    const aliases = ofType(run, RULE).flatMap((r) => r.aliases);
    expect(new Set(aliases).size).toBe(aliases.length);
    expect(aliases.filter((a) => ofType(run, RULE).some((r) => r.urn === a))).toEqual([]);
  });

  it("removing the first admin CIDR leaves every other rule's name (and inputs) unchanged", async () => {
    const base = loadStack(PROJECT_ROOT, "production");
    expect(base.openstack.adminCidrs.length).toBeGreaterThan(1);
    const changed: BerthConfig = structuredClone(base);
    const [removed] = changed.openstack.adminCidrs.splice(0, 1);
    const before = rulesOf(get("production"));
    const after = rulesOf(await runConfig(changed));
    expect([...before.keys()].filter((d) => !after.has(d))).toEqual([`ssh from ${removed}`]);
    expect([...after.keys()].filter((d) => !before.has(d))).toEqual([]);
    for (const [description, r] of after) {
      expect(r.name, description).toBe(before.get(description)?.name);
      expect(r.inputs).toEqual(before.get(description)?.inputs);
    }
  });
});
