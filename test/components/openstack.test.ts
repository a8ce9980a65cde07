import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { renderHostIgnition } from "../../ignition/index.ts";
import { runConfig, plain, isSecret, type StackRun } from "../../plan/run.ts";
import { runUnderMocks } from "../../plan/mocks.ts";

const STACKS = ["testing", "staging", "production", "pr-17"] as const;
const ofType = (run: StackRun, t: string) => run.resources.filter((r) => r.type === t);
const byName = (run: StackRun, name: string) => {
  const r = run.resources.find((x) => x.name === name);
  if (!r) throw new Error(`no resource named ${name}`);
  return r;
};

const runs = new Map<string, StackRun>();
beforeAll(async () => {
  // One mock run at a time: the mocks are process-wide.
  for (const s of STACKS) runs.set(s, await runConfig(loadStack(PROJECT_ROOT, s)));
});
const get = (s: string) => runs.get(s) as StackRun;

describe.each(STACKS)("stack %s", (stack) => {
  it("creates one server, volume, port and floating IP per configured host", () => {
    const run = get(stack);
    const n = run.config.hosts.count;
    expect(ofType(run, "openstack:compute/instance:Instance")).toHaveLength(n);
    expect(ofType(run, "openstack:blockstorage/volume:Volume")).toHaveLength(n);
    expect(ofType(run, "openstack:networking/port:Port")).toHaveLength(n);
    expect(ofType(run, "openstack:networking/floatingIp:FloatingIp")).toHaveLength(n);
    expect(ofType(run, "openstack:networking/floatingIpAssociate:FloatingIpAssociate")).toHaveLength(n);
    expect(ofType(run, "openstack:compute/serverGroup:ServerGroup")).toHaveLength(n > 1 ? 1 : 0);
    expect(ofType(run, "openstack:networking/network:Network")).toHaveLength(1);
    expect(ofType(run, "openstack:networking/router:Router")).toHaveLength(1);
  });

  it("parents every resource to its component, and components to the environment", () => {
    const run = get(stack);
    const env = run.resources.find((r) => r.type === "berth:stack:CiEnvironment");
    expect(env?.parent).toBeUndefined();
    const urns = new Set(run.resources.map((r) => r.urn));
    for (const r of run.resources) {
      if (r === env) continue;
      expect(r.parent, `${r.type} ${r.name} has no parent`).toBeDefined();
      expect(urns.has(r.parent as string), `${r.name}: parent ${r.parent} not registered`).toBe(true);
      if (r.custom) expect(r.parent).toMatch(/::berth:/); // custom resources live inside a Berth component
    }
    for (const server of ofType(run, "openstack:compute/instance:Instance"))
      expect(server.parent).toMatch(/berth:host:CiHost::/);
    for (const rule of ofType(run, "openstack:networking/secGroupRule:SecGroupRule"))
      expect(rule.parent).toMatch(/berth:network:CiNetwork::/);
  });

  it("boots each server with exactly that host's rendered Ignition, with the docker volume in blockDevices", () => {
    const run = get(stack);
    const c = run.config;
    const state = (name: string, key: string) => String(byName(run, name).state[key]);
    c.hosts.names.forEach((host, i) => {
      const server = byName(run, `${host}-server`);
      const volume = byName(run, `${host}-docker`);
      const expected = renderHostIgnition({
        ...hostIgnitionBase(c, host),
        dockerVolumeId: volume.id as string,
        registry: {
          ...hostIgnitionBase(c, host).registry!,
          caCertPem: state(`${c.stack}-registry-ca-cert`, "certPem"),
        },
        dockerTls: {
          caCertPem: state(`${c.stack}-docker-ca-cert`, "certPem"),
          serverCertPem: state(`${host}-dockerd-cert`, "certPem"),
          serverKeyPem: state(`${host}-dockerd-key`, "privateKeyPem"),
          port: c.hosts.dockerTlsPort,
        },
      });
      expect(plain(server.inputs.userData)).toBe(expected);
      const devices = plain(server.inputs.blockDevices) as Record<string, unknown>[];
      expect(devices[0]).toMatchObject({ sourceType: "image", bootIndex: 0, deleteOnTermination: true });
      expect(devices[1]).toMatchObject({
        sourceType: "volume",
        destinationType: "volume",
        uuid: volume.id,
        deleteOnTermination: false,
      });
      expect(plain(volume.inputs.size)).toBe(c.hosts.dockerVolumeSize);
      expect(plain(server.inputs.flavorName)).toBe(c.hosts.flavor);
      const port = byName(run, `${host}-port`);
      expect(plain(port.inputs.fixedIps)).toEqual([
        { subnetId: expect.any(String), ipAddress: c.hosts.addresses[i] },
      ]);
      expect(server.deleteBeforeReplace).toBe(true);
      expect(plain(server.inputs.metadata)).toMatchObject({
        "berth-stack": c.stack,
        "berth-environment": c.environment,
      });
    });
  });

  it("keeps user data and private keys secret, in resources and in outputs", async () => {
    const run = get(stack);
    for (const server of ofType(run, "openstack:compute/instance:Instance"))
      expect(isSecret(server.inputs.userData)).toBe(true);
    const key = run.outputs.dockerTlsClientKeyPem;
    expect(key).toBeDefined();
    expect(await (key as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
    // No private key text appears in any non-secret input.
    const keys = ofType(run, "tls:index/privateKey:PrivateKey").flatMap((k) => [
      String(k.state.privateKeyPem),
      String(k.state.privateKeyOpenssh),
    ]);
    // The public part of a value: secret-marked nodes (at any depth) are left out.
    const publicPart = (v: unknown): unknown =>
      isSecret(v)
        ? null
        : Array.isArray(v)
          ? v.map(publicPart)
          : v && typeof v === "object"
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, publicPart(x)]))
            : v;
    for (const r of run.resources)
      for (const [field, v] of Object.entries(r.inputs)) {
        const text = JSON.stringify(publicPart(v));
        for (const k of keys)
          expect(text.includes(k.trim().split("\n")[1]!), `${r.name}.${field} leaks a key`).toBe(false);
      }
  });

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

  it("protects and retains data volumes only where the stack asks for it", () => {
    const run = get(stack);
    for (const v of ofType(run, "openstack:blockstorage/volume:Volume")) {
      expect(v.protect).toBe(stack === "production");
      expect(v.retainOnDelete).toBe(stack === "production");
    }
    for (const s of ofType(run, "openstack:compute/instance:Instance")) expect(s.protect).toBe(false);
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

describe("host layer vs service layer", () => {
  function serverInputs(run: StackRun): Record<string, unknown> {
    return Object.fromEntries(
      ofType(run, "openstack:compute/instance:Instance").map((s) => [s.name, JSON.stringify(s.inputs)]),
    );
  }

  it("changing agents per host, services or registry users changes no server input", async () => {
    const base = loadStack(PROJECT_ROOT, "staging");
    const changed: BerthConfig = structuredClone(base);
    changed.jenkins.agentsPerHost = base.jenkins.agentsPerHost + 2;
    changed.jenkins.labels = ["other"];
    changed.services.minimal = ["postgres"];
    // Restore jobs are host-layer (timers in Ignition, docs/configuration.md): services with a
    // `restore` stay as they are here; changing one is the test below.
    changed.services.productionLike = [
      ...base.services.productionLike.filter((s) => s.restore !== undefined),
      { name: "mongodb-cluster-b-node-1", kind: "mongodb", address: "172.30.0.99" },
    ];
    changed.registry.users = [{ name: "someone-else" }];
    const a = await runConfig(base);
    const b = await runConfig(changed);
    expect(serverInputs(b)).toEqual(serverInputs(a));
    // …while the change did reach the network rules (the agent port range), so the run saw it.
    const agentRule = (r: StackRun) =>
      ofType(r, "openstack:networking/secGroupRule:SecGroupRule")
        .filter((x) => String(plain(x.inputs.description)).startsWith("jenkins-agents from "))
        .map((x) => plain(x.inputs.portRangeMax));
    expect(agentRule(b)).not.toEqual(agentRule(a));
  });

  it("changing a restore setting (host-layer: a timer in Ignition) does change the servers' user data", async () => {
    const base = loadStack(PROJECT_ROOT, "staging");
    const changed: BerthConfig = structuredClone(base);
    const r = changed.services.productionLike.find((s) => s.restore)?.restore;
    if (!r) throw new Error("staging has no restore setting");
    r.schedule = "*-*-* 05:00:00";
    expect(serverInputs(await runConfig(changed))).not.toEqual(serverInputs(await runConfig(base)));
  });

  it("changing a host-layer setting does change the servers' user data", async () => {
    const base = loadStack(PROJECT_ROOT, "testing");
    const changed: BerthConfig = structuredClone(base);
    changed.hosts.timezone = "UTC";
    const a = serverInputs(await runConfig(base));
    const b = serverInputs(await runConfig(changed));
    expect(b).not.toEqual(a);
  });
});

describe("bad configuration under `pulumi up`", () => {
  it("stops with one RunError before any resource is registered", async () => {
    let error: unknown;
    vi.resetModules();
    const run = await runUnderMocks("testing", async () => {
      pulumi.runtime.setAllConfig({
        "berth:openstack": JSON.stringify({
          image: "x",
          externalNetwork: "public",
          adminCidrs: ["10.0.0.1/8"],
        }),
        "berth:hosts": JSON.stringify({ count: 0, flavor: "m1", sshKeys: ["nope"] }),
        "berth:registry": JSON.stringify({ hostname: "registry.example.com" }),
        "berth:jenkins": JSON.stringify({
          controllerCidr: "10.0.0.0/8",
          agentPublicKey: "ssh-ed25519 AAAA",
          agentsPerhost: 2,
        }),
        "berth:dns": JSON.stringify({ searchDomains: ["ci.example"] }),
      });
      try {
        await import("../../index.ts");
      } catch (e) {
        error = e;
      }
    });
    await run.result;
    expect(error).toBeInstanceOf(pulumi.RunError);
    expect(run.resources).toEqual([]);
    const message = (error as Error).message;
    for (const path of [
      "berth:hosts.count",
      "berth:hosts.sshKeys[0]",
      "berth:openstack.adminCidrs[0]",
      "berth:jenkins.agentPublicKey",
      "berth:jenkins.agentsPerhost",
    ])
      expect(message).toContain(path);
  });

  it("with a valid configuration, index.ts registers the stack", async () => {
    vi.resetModules();
    const cfg = loadStack(PROJECT_ROOT, "testing");
    const raw = (await import("../../config/load.ts")).readStack(PROJECT_ROOT, "testing").values;
    const run = await runUnderMocks("testing", async () => {
      pulumi.runtime.setAllConfig(
        Object.fromEntries(Object.entries(raw).map(([k, v]) => [`berth:${k}`, JSON.stringify(v)])),
      );
      return import("../../index.ts");
    });
    const mod = await run.result;
    expect(mod.registryUrl).toBe(`https://${cfg.registry.hostname}`);
    expect(run.resources.filter((r) => r.type === "openstack:compute/instance:Instance")).toHaveLength(1);
  });
});
