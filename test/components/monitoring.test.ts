/**
 * Metrics under Pulumi's mocks, with the real program: node_exporter, the registry's metrics and
 * dockerd's metrics-addr are bound on each host's private address only; the security group opens
 * the metric ports only to `berth:monitoring.cidrs` (no rule without them); enabling monitoring
 * changes no server input and no secret. Validation refuses world-open and split-world monitoring
 * ranges, repeated ones, and agent ports that would take a metric port.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadStack } from "../../config/load.ts";
import { ConfigError } from "../../config/errors.ts";
import { stableStringify } from "../../ignition/serialize.ts";
import { dockerDaemonJson } from "../../ignition/host.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { runStack, plain, isSecret, type StackRun } from "../../plan/run.ts";
import { editedStackRoot, type StackConfigMap } from "../support/stacks.ts";

const MONITOR = "198.51.100.0/28";
const CONTAINER = "docker:index/container:Container";
const RULE = "openstack:networking/secGroupRule:SecGroupRule";
const SERVER = "openstack:compute/instance:Instance";

const withMonitoring = (cidrs: unknown) => (c: StackConfigMap) => {
  c["berth:monitoring"] = { cidrs };
};
type Port = { internal: number; external: number; ip: string; protocol: string };
const containers = (run: StackRun, name: string) =>
  run.resources.filter((r) => r.type === CONTAINER && r.inputs.name === name);
const text = (v: unknown) => stableStringify(v as never);

describe("metrics under mocks (testing stack)", () => {
  let on: StackRun;
  let off: StackRun;
  beforeAll(async () => {
    off = await runStack(
      editedStackRoot(() => undefined),
      "testing",
    );
    on = await runStack(editedStackRoot(withMonitoring([MONITOR])), "testing");
  });

  it("opens 9100, 9323 and 5001 to the monitoring CIDR only, one rule per port, named by what they allow", () => {
    const rules = on.resources.filter(
      (r) => r.type === RULE && /^metrics-/.test(String(r.inputs.description)),
    );
    expect(rules.map((r) => r.name).sort()).toEqual(
      [5001, 9100, 9323].map((p) => `testing-ci-metrics-${p}-from-198.51.100.0-28`).sort(),
    );
    for (const r of rules) {
      expect(r.inputs.remoteIpPrefix).toBe(MONITOR);
      expect(r.inputs.portRangeMin).toBe(r.inputs.portRangeMax);
      expect(r.inputs.description).toBe(`metrics-${String(r.inputs.portRangeMin)} from ${MONITOR}`);
    }
    // Nothing else opens a metric port.
    for (const r of on.resources.filter((x) => x.type === RULE)) {
      const min = r.inputs.portRangeMin as number | undefined;
      const max = r.inputs.portRangeMax as number | undefined;
      if (min === undefined || max === undefined) continue;
      const opensMetrics = [9100, 9323, 5001].some((p) => min <= p && p <= max);
      if (opensMetrics) expect(r.inputs.remoteIpPrefix, r.name).toBe(MONITOR);
    }
  });

  it("has no metrics rule without berth:monitoring.cidrs", () => {
    expect(off.config.monitoring.cidrs).toEqual([]);
    expect(
      off.resources.filter((r) => r.type === RULE && /^metrics-/.test(String(r.inputs.description))),
    ).toEqual([]);
  });

  it("runs node_exporter on every host, published on the host's private address only, reading the host read-only", () => {
    const c = on.config;
    const all = containers(on, "node-exporter");
    expect(all).toHaveLength(c.hosts.count);
    c.hosts.names.forEach((host, i) => {
      const ctr = all.find((r) => r.name === `${host}-node-exporter-container`);
      expect(ctr, host).toBeDefined();
      expect(ctr?.inputs.ports as Port[]).toEqual([
        { internal: 9100, external: 9100, ip: c.hosts.addresses[i], protocol: "tcp" },
      ]);
      expect(ctr?.inputs.networkMode).toBe("bridge");
      expect(ctr?.inputs.volumes).toEqual([{ hostPath: "/", containerPath: "/host", readOnly: true }]);
      expect(ctr?.inputs.command).toContain("--collector.textfile.directory=/host/var/lib/berth/textfile");
      expect(ctr?.inputs.privileged).toBeUndefined();
      // The image by the ID of a RemoteImage pinned by digest.
      const image = on.resources.find(
        (r) =>
          r.type === "docker:index/remoteImage:RemoteImage" &&
          r.inputs.name === c.monitoring.nodeExporterImage,
      );
      expect(c.monitoring.nodeExporterImage).toMatch(/^prom\/node-exporter:v[\d.]+@sha256:[0-9a-f]{64}$/);
      expect(image).toBeDefined();
    });
  });

  it("serves the registry's metrics through nginx on the registry host's private address; the registry itself publishes nothing", () => {
    const c = on.config;
    const nginx = containers(on, "registry-nginx")[0];
    const ports = (nginx?.inputs.ports as Port[]).map((p) => `${p.ip}:${p.external}`);
    expect(ports).toContain(`${c.registry.address}:5001`);
    for (const p of nginx?.inputs.ports as Port[]) expect(p.ip).toBe(c.registry.address);
    expect(containers(on, "registry")[0]?.inputs.ports ?? []).toEqual([]);
    const upload = (r: (typeof on.resources)[number] | undefined, file: string) =>
      String(
        plain(
          (r?.inputs.uploads as { file: string; content: unknown }[]).find((u) => u.file === file)?.content,
        ),
      );
    const conf = upload(nginx, "/etc/nginx/nginx.conf");
    expect(conf).toContain("listen 5001;");
    expect(conf).toContain("set $berth_registry_metrics registry:5001;");
    const registryConf = upload(containers(on, "registry")[0], "/etc/docker/registry/config.yml");
    expect(registryConf).toMatch(/debug:\n\s+addr: ":5001"\n\s+prometheus:\n\s+enabled: true/);
  });

  it("puts dockerd's metrics-addr on the private address and the textfile writer into every host's Ignition", () => {
    const c = on.config;
    c.hosts.names.forEach((host, i) => {
      const base = hostIgnitionBase(c, host);
      expect(base.metrics?.address).toBe(c.hosts.addresses[i]);
      expect(base.metrics?.registryTls !== undefined).toBe(host === c.registry.host);
      const daemon = dockerDaemonJson({ ...base, dockerVolumeId: "x" });
      expect(daemon["metrics-addr"]).toBe(`${String(c.hosts.addresses[i])}:9323`);
    });
    const userData = String(plain(on.resources.find((r) => r.type === SERVER)?.inputs.userData));
    expect(userData).toContain("berth-textfile-metrics.timer");
  });

  it("changes no server input and no secret: monitoring is the security group's business", () => {
    const servers = (run: StackRun) =>
      run.resources
        .filter((r) => r.type === SERVER)
        .map((r) => [r.name, text(r.inputs), isSecret(r.inputs.userData)]);
    expect(servers(on)).toEqual(servers(off));
    const secrets = (run: StackRun) =>
      run.resources.flatMap((r) =>
        Object.entries(r.inputs)
          .filter(([, v]) => isSecret(v))
          .map(([k]) => `${r.name}.${k}`),
      );
    expect(secrets(on).sort()).toEqual(secrets(off).sort());
    for (const ctr of containers(on, "node-exporter"))
      expect(JSON.stringify(ctr.inputs)).not.toMatch(/PRIVATE KEY|secret/i);
  });
});

describe("validation of berth:monitoring", () => {
  const problems = (edit: (c: StackConfigMap) => void): string => {
    try {
      loadStack(editedStackRoot(edit), "testing");
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    return "";
  };

  it("accepts a monitoring CIDR", () => {
    expect(problems(withMonitoring([MONITOR]))).toBe("");
  });

  it("refuses the world, whole or split into pieces each below the limit, naming the field", () => {
    expect(problems(withMonitoring(["0.0.0.0/0"]))).toMatch(
      /berth:monitoring\.cidrs\[0\]: opens node_exporter metrics/,
    );
    expect(problems(withMonitoring(["0.0.0.0/1", "128.0.0.0/1"]))).toMatch(
      /berth:monitoring\.cidrs\[1\]: opens/,
    );
    // Three /17s: each alone under a /16's worth, together more.
    const split = problems(withMonitoring(["11.0.0.0/17", "11.0.128.0/17", "11.1.0.0/17"]));
    expect(split).toMatch(/berth:monitoring\.cidrs: opens node_exporter metrics \(tcp port 9100\)/);
    expect(split).toContain("berth:openstack.allowWorld");
  });

  it("refuses a repeated CIDR and a CIDR with host bits", () => {
    expect(problems(withMonitoring([MONITOR, MONITOR]))).toMatch(/berth:monitoring\.cidrs\[1\]: repeats/);
    expect(problems(withMonitoring(["198.51.100.1/28"]))).toMatch(/berth:monitoring\.cidrs\[0\]/);
  });

  it("refuses agent ports that would take node_exporter's port", () => {
    const msg = problems((c) => {
      (c["berth:jenkins"] as Record<string, unknown>).basePort = 9099;
    });
    expect(msg).toMatch(/berth:jenkins\.basePort: .*overlaps port 9100 \(node_exporter\)/);
  });
});
