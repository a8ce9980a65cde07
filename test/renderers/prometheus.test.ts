/**
 * Berth's Prometheus configuration, checked by Debian's promtool: `check config` on what
 * `berth monitoring` writes for each shipped stack, and `test rules` with series that make each
 * alert fire on one host and stay silent on another (and before its `for` has elapsed).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { PROJECT_ROOT } from "../../config/root.ts";
import { RenderError } from "../../renderers/common.ts";
import {
  METRICS_PORTS,
  MONITORING_DEFAULTS,
  renderAlertRules,
  renderTargets,
  type MonitoringInput,
} from "../../renderers/prometheus.ts";
import { cli } from "../support/cli.ts";
import { describeWithTools, findTool, tempDir } from "./helpers.ts";

const promtool = findTool("promtool", "prometheus");
const INPUT: MonitoringInput = {
  stack: "t",
  hosts: [
    { name: "bad", address: "10.0.0.1", registry: true },
    { name: "good", address: "10.0.0.2", registry: false },
  ],
  thresholds: MONITORING_DEFAULTS,
};

interface RuleDoc {
  groups: {
    name: string;
    rules: { alert: string; annotations: Record<string, string>; labels: Record<string, string> }[];
  }[];
}

describe("renderTargets / renderAlertRules", () => {
  it("targets each host's private address on each job's port; the registry job only on the registry host", () => {
    const t = renderTargets(INPUT);
    expect(JSON.parse(t.node)).toEqual([
      { targets: [`10.0.0.1:${METRICS_PORTS.node}`], labels: { host: "bad", stack: "t" } },
      { targets: [`10.0.0.2:${METRICS_PORTS.node}`], labels: { host: "good", stack: "t" } },
    ]);
    expect(JSON.parse(t.registry)).toEqual([
      { targets: [`10.0.0.1:${METRICS_PORTS.registry}`], labels: { host: "bad", stack: "t" } },
    ]);
  });

  it.each([
    ["diskFreeRatio", 1.5],
    ["registry5xxRatio", 0],
    ["maxUptimeDays", 2.5],
    ["restartsPer15m", -1],
  ] as const)("refuses thresholds.%s = %s, naming it", (key, value) => {
    const bad = () => renderAlertRules({ ...INPUT, thresholds: { ...MONITORING_DEFAULTS, [key]: value } });
    expect(bad).toThrow(RenderError);
    expect(bad).toThrow(`thresholds.${key}`);
  });
});

/** Labels every series of a host carries (as file_sd and the scrape add them). */
const hostLabels = (host: string, job: string, port: number) => ({
  job,
  host,
  instance: `10.0.0.${host === "bad" ? 1 : 2}:${port}`,
});
const sel = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;

interface AlertCase {
  alert: string;
  /** Series → values, in promtool's expanding notation, one step a minute. */
  series: [string, string][];
  /** When the alert fires (after its `for`), and the labels it fires with (besides alertname/severity). */
  firesAt: string;
  firing: Record<string, string>;
  /** A time before `for` has elapsed: nothing fires yet. */
  silentAt?: string;
}

const node = (h: string) => hostLabels(h, "berth-node", METRICS_PORTS.node);
const dockerd = (h: string) => hostLabels(h, "berth-dockerd", METRICS_PORTS.dockerd);
const reg = (h: string) => hostLabels(h, "berth-registry", METRICS_PORTS.registry);
const day = 86400;
const t = MONITORING_DEFAULTS;

const CASES: AlertCase[] = [
  {
    alert: "BerthHostDown",
    series: [
      [sel("up", node("bad")), "0x30"],
      [sel("up", node("good")), "1x30"],
    ],
    firesAt: "10m",
    silentAt: "3m",
    firing: node("bad"),
  },
  {
    alert: "BerthDockerVolumeFull",
    series: [
      [
        sel("node_filesystem_avail_bytes", { ...node("bad"), mountpoint: "/var/lib/docker" }),
        `${(t.diskFreeRatio - 0.01) * 1000}x30`,
      ],
      [sel("node_filesystem_size_bytes", { ...node("bad"), mountpoint: "/var/lib/docker" }), "1000x30"],
      [
        sel("node_filesystem_avail_bytes", { ...node("good"), mountpoint: "/var/lib/docker" }),
        `${(t.diskFreeRatio + 0.01) * 1000}x30`,
      ],
      [sel("node_filesystem_size_bytes", { ...node("good"), mountpoint: "/var/lib/docker" }), "1000x30"],
      // Another file system of the bad host, nearly full: not the docker volume, no alert.
      [sel("node_filesystem_avail_bytes", { ...node("good"), mountpoint: "/boot" }), "1x30"],
      [sel("node_filesystem_size_bytes", { ...node("good"), mountpoint: "/boot" }), "1000x30"],
    ],
    firesAt: "15m",
    silentAt: "5m",
    firing: { ...node("bad"), mountpoint: "/var/lib/docker" },
  },
  {
    alert: "BerthBtrfsUnallocatedLow",
    series: [
      [
        sel("node_btrfs_device_unused_bytes", { ...node("bad"), uuid: "u1", device: "vdb" }),
        `${(t.btrfsUnallocatedRatio - 0.02) * 1000}x60`,
      ],
      [sel("node_btrfs_device_size_bytes", { ...node("bad"), uuid: "u1", device: "vdb" }), "1000x60"],
      [
        sel("node_btrfs_device_unused_bytes", { ...node("good"), uuid: "u2", device: "vdb" }),
        `${(t.btrfsUnallocatedRatio + 0.02) * 1000}x60`,
      ],
      [sel("node_btrfs_device_size_bytes", { ...node("good"), uuid: "u2", device: "vdb" }), "1000x60"],
    ],
    firesAt: "40m",
    silentAt: "20m",
    firing: { host: "bad", instance: node("bad").instance, uuid: "u1" },
  },
  {
    alert: "BerthContainerRestarting",
    series: [
      [sel("berth_container_restart_count", { ...node("bad"), container: "redis" }), "0+1x30"],
      [sel("berth_container_restart_count", { ...node("good"), container: "redis" }), "2x30"],
    ],
    firesAt: "20m",
    firing: { ...node("bad"), container: "redis" },
  },
  {
    alert: "BerthContainerUnhealthy",
    series: [
      [sel("engine_daemon_health_checks_failed_total", dockerd("bad")), "0+1x40"],
      [sel("engine_daemon_health_checks_failed_total", dockerd("good")), "0x40"],
    ],
    firesAt: "30m",
    silentAt: "12m",
    firing: dockerd("bad"),
  },
  {
    alert: "BerthRegistryErrors",
    series: [
      [
        sel("registry_http_requests_total", { ...reg("bad"), code: "500", handler: "blob", method: "get" }),
        "0+10x40",
      ],
      [
        sel("registry_http_requests_total", { ...reg("bad"), code: "200", handler: "blob", method: "get" }),
        "0+10x40",
      ],
      [
        sel("registry_http_requests_total", { ...reg("good"), code: "200", handler: "blob", method: "get" }),
        "0+100x40",
      ],
      [
        sel("registry_http_requests_total", {
          ...reg("good"),
          code: "404",
          handler: "manifest",
          method: "get",
        }),
        "0+100x40",
      ],
    ],
    firesAt: "30m",
    silentAt: "8m",
    firing: { host: "bad", instance: reg("bad").instance },
  },
  {
    alert: "BerthUpdateOverdue",
    series: [
      // Booted long before the test's clock starts (promtool's time() is 0 at the start).
      [sel("node_boot_time_seconds", node("bad")), `-${(t.maxUptimeDays + 1) * day}x180`],
      [sel("node_boot_time_seconds", node("good")), `-${(t.maxUptimeDays - 1) * day}x180`],
    ],
    firesAt: "2h",
    silentAt: "30m",
    firing: node("bad"),
  },
  {
    alert: "BerthCertificateExpiring",
    series: [
      [
        sel("berth_tls_cert_not_after_timestamp_seconds", { ...node("bad"), cert: "dockerd" }),
        `${(t.certExpiryDays - 1) * day}x180`,
      ],
      [
        sel("berth_tls_cert_not_after_timestamp_seconds", { ...node("good"), cert: "dockerd" }),
        `${(t.certExpiryDays + 5) * day}x180`,
      ],
    ],
    firesAt: "2h",
    silentAt: "30m",
    firing: { ...node("bad"), cert: "dockerd" },
  },
];

/** The alert an overlay2 host gets instead of the btrfs one (its ext4 volume has fixed inodes). */
const INODES_CASE: AlertCase = {
  alert: "BerthDockerVolumeInodesLow",
  series: [
    [
      sel("node_filesystem_files_free", { ...node("bad"), mountpoint: "/var/lib/docker" }),
      `${(t.diskFreeRatio - 0.01) * 1000}x30`,
    ],
    [sel("node_filesystem_files", { ...node("bad"), mountpoint: "/var/lib/docker" }), "1000x30"],
    [
      sel("node_filesystem_files_free", { ...node("good"), mountpoint: "/var/lib/docker" }),
      `${(t.diskFreeRatio + 0.01) * 1000}x30`,
    ],
    [sel("node_filesystem_files", { ...node("good"), mountpoint: "/var/lib/docker" }), "1000x30"],
    // The root file system of the good host, nearly out of inodes: not the docker volume, no alert.
    [sel("node_filesystem_files_free", { ...node("good"), mountpoint: "/" }), "1x30"],
    [sel("node_filesystem_files", { ...node("good"), mountpoint: "/" }), "1000x30"],
  ],
  firesAt: "15m",
  silentAt: "5m",
  firing: { ...node("bad"), mountpoint: "/var/lib/docker" },
};
const OVERLAY2_INPUT: MonitoringInput = { ...INPUT, storageDriver: "overlay2" };
const OVERLAY2_CASES = [...CASES.filter((c) => c.alert !== "BerthBtrfsUnallocatedLow"), INODES_CASE];

describe("alert rules per storage driver", () => {
  const names = (input: MonitoringInput) =>
    ((parse(renderAlertRules(input)) as RuleDoc).groups[0]?.rules ?? []).map((r) => r.alert);

  it("btrfs (the default) has the btrfs allocation alert and no inode alert", () => {
    expect(renderAlertRules({ ...INPUT, storageDriver: "btrfs" })).toBe(renderAlertRules(INPUT));
    expect(names(INPUT)).toContain("BerthBtrfsUnallocatedLow");
    expect(names(INPUT)).not.toContain("BerthDockerVolumeInodesLow");
  });

  it("overlay2 has the inode alert in its place and nothing about btrfs", () => {
    expect(names(OVERLAY2_INPUT)).toEqual(
      names(INPUT).map((n) => (n === "BerthBtrfsUnallocatedLow" ? "BerthDockerVolumeInodesLow" : n)),
    );
    expect(renderAlertRules(OVERLAY2_INPUT)).not.toMatch(/btrfs/);
  });
});

describeWithTools("promtool on Berth's Prometheus configuration", { tools: [promtool] }, () => {
  const tmp = tempDir("prometheus");
  afterAll(() => tmp.remove());
  const promtoolRun = (args: string[]) =>
    spawnSync(promtool.path ?? "promtool", args, { cwd: tmp.path, encoding: "utf8", timeout: 60_000 });

  it.each(["testing", "staging", "production"])(
    "check config accepts what berth monitoring %s writes",
    async (stack) => {
      const out = join(tmp.path, stack);
      const r = await cli(PROJECT_ROOT, "monitoring", stack, "--out", out);
      expect(r.code, r.err).toBe(0);
      const check = spawnSync(promtool.path ?? "promtool", ["check", "config", "prometheus.yml"], {
        cwd: out,
        encoding: "utf8",
      });
      expect(check.status, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toMatch(/SUCCESS: 8 rules found/);
      const targets = JSON.parse(readFileSync(join(out, "targets", "node.json"), "utf8")) as {
        targets: string[];
      }[];
      expect(targets.length).toBe({ testing: 1, staging: 2, production: 3 }[stack]);
    },
  );

  const names = (input: MonitoringInput) =>
    ((parse(renderAlertRules(input)) as RuleDoc).groups[0]?.rules ?? []).map((r) => r.alert);

  it("every alert has a test case", () => {
    const doc = parse(renderAlertRules(INPUT)) as RuleDoc;
    expect(doc.groups[0]?.rules.map((r) => r.alert).sort()).toEqual(CASES.map((c) => c.alert).sort());
  });

  it.each([
    ["btrfs", INPUT, CASES],
    ["overlay2", OVERLAY2_INPUT, OVERLAY2_CASES],
  ] as const)(
    "test rules (%s): each alert fires on the bad host only, and not before its `for`",
    (driver, input, cases) => {
      expect(names(input).sort()).toEqual(cases.map((c) => c.alert).sort());
      const rulesText = renderAlertRules(input);
      writeFileSync(join(tmp.path, `rules-${driver}.yml`), rulesText);
      const rules = new Map((parse(rulesText) as RuleDoc).groups[0]?.rules.map((r) => [r.alert, r]) ?? []);
      const expand = (text: string, labels: Record<string, string>) =>
        text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? "");
      const tests = cases.map((c) => {
        const rule = rules.get(c.alert);
        if (!rule) throw new Error(`no rule ${c.alert}`);
        const labels = { ...c.firing, ...rule.labels };
        return {
          interval: "1m",
          input_series: c.series.map(([series, values]) => ({ series, values })),
          alert_rule_test: [
            {
              eval_time: c.firesAt,
              alertname: c.alert,
              exp_alerts: [
                {
                  exp_labels: labels,
                  exp_annotations: Object.fromEntries(
                    Object.entries(rule.annotations).map(([k, v]) => [k, expand(v, labels)]),
                  ),
                },
              ],
            },
            ...(c.silentAt ? [{ eval_time: c.silentAt, alertname: c.alert, exp_alerts: [] }] : []),
          ],
        };
      });
      writeFileSync(
        join(tmp.path, `rules-${driver}.test.yml`),
        stringify({ rule_files: [`rules-${driver}.yml`], tests }),
      );
      const r = promtoolRun(["test", "rules", `rules-${driver}.test.yml`]);
      expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    },
  );
});
