/**
 * components/environment.ts (CiEnvironment) in every shipped stack: the component tree, secrets in
 * resources and outputs, and the split between the host layer and the service layer.
 */
import { describe, expect, it } from "vitest";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { runConfig, plain, isSecret, type StackRun } from "../../plan/run.ts";
import { STACKS, ofType, stackRuns } from "../support/stack-runs.ts";

const get = stackRuns();

describe.each(STACKS)("stack %s", (stack) => {
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
