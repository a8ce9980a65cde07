/** index.ts, the Pulumi program's entry point, under `pulumi up` (the mocks). */
import { describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { loadStack } from "../config/load.ts";
import { PROJECT_ROOT } from "../config/root.ts";
import { runUnderMocks } from "../plan/mocks.ts";

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
        await import("../index.ts");
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
    const raw = (await import("../config/load.ts")).readStack(PROJECT_ROOT, "testing").values;
    const run = await runUnderMocks("testing", async () => {
      pulumi.runtime.setAllConfig(
        Object.fromEntries(Object.entries(raw).map(([k, v]) => [`berth:${k}`, JSON.stringify(v)])),
      );
      return import("../index.ts");
    });
    const mod = await run.result;
    expect(mod.registryUrl).toBe(`https://${cfg.registry.hostname}`);
    expect(run.resources.filter((r) => r.type === "openstack:compute/instance:Instance")).toHaveLength(1);
  });
});
