/**
 * The e2e harness's strictness, without an engine: it plans the real `testing` program for
 * testing-ci-1, and refuses anything it does not understand, naming the resource and the field.
 */
import { beforeAll, describe, expect, it } from "vitest";

import type { CapturedResource } from "../../plan/mocks.ts";
import { runStack } from "../../plan/run.ts";
import { DOCKER_BRIDGE_GATEWAY } from "../../components/docker-host.ts";
import {
  HarnessError,
  NOT_APPLICABLE,
  TYPES,
  durationNs,
  planHost,
  type HarnessOptions,
} from "../../testkit/e2e/harness.ts";
import { REPO_ROOT } from "../../testkit/e2e/support/engine.ts";

const HOST = "testing-ci-1";
let resources: CapturedResource[];
let opts: HarnessOptions;

beforeAll(async () => {
  const run = await runStack(REPO_ROOT, "testing");
  resources = run.resources;
  const privateIp = run.config.hosts.addresses[run.config.hosts.names.indexOf(HOST)] as string;
  // node_exporter's bind of the host's `/` (applyHostToEngine maps it to an empty directory).
  opts = {
    publishedIps: ["127.0.0.1", DOCKER_BRIDGE_GATEWAY, privateIp],
    hostPathMap: { "/": "/nonexistent/host-root" },
  };
}, 120_000);

/** The resources with one container's inputs changed by `edit`. */
function withContainer(name: string, edit: (inputs: Record<string, unknown>) => void): CapturedResource[] {
  return resources.map((r) => {
    if (r.type !== TYPES.container || r.inputs.name !== name) return r;
    const inputs = structuredClone(r.inputs);
    edit(inputs);
    return { ...r, inputs };
  });
}

describe("e2e harness strictness", () => {
  it("plans the whole host: every field of every resource understood", () => {
    const plan = planHost({ resources }, HOST, opts);
    const names = plan.containers.map((c) => c.name);
    expect(names).toContain("registry");
    expect(names.indexOf("registry-nginx")).toBeGreaterThan(names.indexOf("registry"));
    for (const svc of ["redis-cache-1", "mongodb-cluster-a-node-1", "app-holder"])
      expect(names.indexOf(svc)).toBeGreaterThan(names.indexOf("dnsmasq"));
    expect(plan.networks.map((n) => n.name).sort()).toEqual(["berth-registry", "ci-services"]);
    expect(plan.ports.length).toBeGreaterThan(0);
    console.log(`harness plan for ${HOST}: ${names.join(", ")}\n  ${plan.mappings.join("\n  ")}`);
  });

  it("fails on an unknown top-level container field, naming resource and field", () => {
    const edited = withContainer("redis", (i) => (i.gpus = "all"));
    expect(() => planHost({ resources: edited }, HOST, opts)).toThrow(HarnessError);
    expect(() => planHost({ resources: edited }, HOST, opts)).toThrow(
      /docker:index\/container:Container testing-ci-1-services-redis: field gpus: not understood/,
    );
  });

  it("fails on an unknown nested field (uploads, ports, healthcheck, networksAdvanced)", () => {
    const cases: [string, (i: Record<string, unknown>) => void, RegExp][] = [
      [
        "registry-nginx",
        (i) => ((i.uploads as Record<string, unknown>[])[1]!.source = "/x"),
        /field uploads\[1\]\.source/,
      ],
      [
        "redis",
        (i) => ((i.ports as Record<string, unknown>[])[0]!.hostIpMode = "x"),
        /field ports\[0\]\.hostIpMode/,
      ],
      [
        "redis",
        (i) => ((i.healthcheck as Record<string, unknown>).startInterval2 = "1s"),
        /field healthcheck\.startInterval2/,
      ],
      [
        "dnsmasq",
        (i) => ((i.networksAdvanced as Record<string, unknown>[])[0]!.macAddress = "x"),
        /networksAdvanced\[0\]\.macAddress/,
      ],
    ];
    for (const [name, edit, re] of cases)
      expect(() => planHost({ resources: withContainer(name, edit) }, HOST, opts)).toThrow(re);
  });

  it("fails on unknown fields of networks, volumes and remote images too", () => {
    const edit = (type: string, field: string) =>
      resources.map((r) => (r.type === type ? { ...r, inputs: { ...r.inputs, [field]: true } } : r));
    expect(() => planHost({ resources: edit(TYPES.network, "checkDuplicate") }, HOST, opts)).toThrow(
      /Network testing-ci-1-.*: field checkDuplicate/,
    );
    expect(() => planHost({ resources: edit(TYPES.volume, "cluster") }, HOST, opts)).toThrow(
      /Volume .*field cluster/,
    );
    expect(() => planHost({ resources: edit(TYPES.remoteImage, "forceRemove") }, HOST, opts)).toThrow(
      /RemoteImage .*field forceRemove/,
    );
    expect(NOT_APPLICABLE["remoteImage.keepLocally"]).toMatch(/stand-in/);
  });

  it("fails on a published IP the test does not map, an unallowed host path, and a bogus substitution", () => {
    expect(() => planHost({ resources }, HOST, { publishedIps: ["127.0.0.1"] })).toThrow(
      /field ports\[\d\]\.ip: publishes on/,
    );
    const sock = withContainer("jenkins-agent-1", (i) =>
      (i.volumes as unknown[]).push({
        hostPath: "/var/run/docker.sock",
        containerPath: "/var/run/docker.sock",
      }),
    );
    expect(() => planHost({ resources: sock }, HOST, opts)).toThrow(/volumes\[1\]\.hostPath: bind-mounts/);
    expect(
      planHost({ resources: sock }, HOST, { ...opts, allowHostPaths: ["/var/run/docker.sock"] }).mappings,
    ).toContain("jenkins-agent-1: bind-mounts /var/run/docker.sock (allowed by the test)");
    expect(() =>
      planHost({ resources }, HOST, {
        ...opts,
        substituteUploads: { "registry-nginx": { "/etc/nope": "x" } },
      }),
    ).toThrow(/does not make: \/etc\/nope/);
    expect(() =>
      planHost({ resources }, HOST, { ...opts, substituteUploads: { nope: { "/x": "x" } } }),
    ).toThrow(/containers the program does not create: nope/);
  });

  it("fails on docker resource types it does not know", () => {
    const extra = resources.find((r) => r.type === TYPES.volume && r.provider)!;
    const withImage = [...resources, { ...extra, type: "docker:index/image:Image", name: "built" }];
    expect(() => planHost({ resources: withImage }, HOST, opts)).toThrow(
      /docker:index\/image:Image built: resource type not supported/,
    );
  });

  it("shortens the health-check interval of every container, or only of those the program waits on", () => {
    const interval = (plan: ReturnType<typeof planHost>) =>
      Object.fromEntries(
        plan.containers
          .filter((c) => c.body.Healthcheck !== undefined)
          .map((c) => [c.name, (c.body.Healthcheck as { Interval: number }).Interval]),
      );
    const all = interval(planHost({ resources }, HOST, { ...opts, healthInterval: "1s" }));
    expect(Object.values(all).every((ns) => ns === 1e9)).toBe(true);
    const plan = planHost({ resources }, HOST, {
      ...opts,
      healthInterval: "1s",
      healthIntervalFor: "waited",
    });
    const waited = plan.containers.filter((c) => c.waitTimeout !== undefined).map((c) => c.name);
    expect(waited).toContain("registry");
    const got = interval(plan);
    for (const [name, ns] of Object.entries(got)) expect(ns, name).toBe(waited.includes(name) ? 1e9 : 30e9);
    expect(Object.keys(got).length).toBeGreaterThan(waited.length);
    expect(plan.mappings.filter((m) => m.includes("health-check interval"))).toEqual(
      waited.map((n) => `${n}: health-check interval 30s → 1s`),
    );
  });

  it("parses Go durations", () => {
    expect(durationNs("30s")).toBe(30e9);
    expect(durationNs("1m30s")).toBe(90e9);
    expect(durationNs("500ms")).toBe(5e8);
    expect(() => durationNs("30")).toThrow();
  });
});
