/**
 * Prometheus configuration for a Berth stack (pure): the scrape configuration with file-based
 * service discovery, the target files, and the alert rules.
 *
 * Metric sources, each on a host's private address:
 * - node_exporter (`node_*`), with its textfile collector carrying Berth's own host metrics
 *   (`berth_*`, see {@link BERTH_TEXTFILE_METRICS});
 * - dockerd's metrics endpoint (`engine_daemon_*`, daemon.json `metrics-addr`);
 * - the registry's debug endpoint (`registry_*`, distribution's `http.debug.prometheus`), on the
 *   registry host only.
 */
import { stringify } from "yaml";
import { RenderError } from "./common.ts";
import { DOCKER_VOLUME_FILESYSTEM, type StorageDriver } from "./storage.ts";

/** Ports of the metric endpoints on every host (private address only). */
export const METRICS_PORTS = {
  /** prometheus-node-exporter's default. */
  node: 9100,
  /** Docker's documented example port for `metrics-addr`. */
  dockerd: 9323,
  /** distribution's debug server (`http.debug.addr`), which serves `/metrics`. */
  registry: 5001,
} as const;

export type MetricsJob = keyof typeof METRICS_PORTS;

/**
 * Metrics the hosts write for node_exporter's textfile collector (name → help). Part of the
 * contract between the host-side writer and the alert rules below.
 */
export const BERTH_TEXTFILE_METRICS = {
  berth_tls_cert_not_after_timestamp_seconds:
    "End of validity of a TLS certificate the host serves (label cert).",
  berth_container_restart_count: "Docker's RestartCount of a Berth container (label container).",
} as const;

export interface MonitoringThresholds {
  /** Alert when the docker volume has less than this fraction free (0–1). */
  diskFreeRatio: number;
  /** Alert when less than this fraction of the btrfs device is unallocated (0–1). */
  btrfsUnallocatedRatio: number;
  /** Alert when a host has not rebooted (no update applied) for this many days. */
  maxUptimeDays: number;
  /** Alert when this fraction of the registry's responses are 5xx over 10 minutes (0–1). */
  registry5xxRatio: number;
  /** Alert when a container restarted this many times within 15 minutes. */
  restartsPer15m: number;
  /** Alert when a certificate expires within this many days. */
  certExpiryDays: number;
}

export const MONITORING_DEFAULTS: MonitoringThresholds = {
  diskFreeRatio: 0.15,
  btrfsUnallocatedRatio: 0.1,
  maxUptimeDays: 21,
  registry5xxRatio: 0.05,
  restartsPer15m: 3,
  certExpiryDays: 21,
};

export interface MonitoringInput {
  stack: string;
  hosts: { name: string; address: string; registry: boolean }[];
  thresholds: MonitoringThresholds;
  /** Mount point of the docker volume, as node_exporter reports it. */
  dockerMount?: string;
  /**
   * The hosts' storage driver (`hosts.storageDriver`, default btrfs). The btrfs allocation alert
   * only exists for btrfs; overlay2 hosts (ext4, a fixed number of inodes) get an inode alert instead.
   */
  storageDriver?: StorageDriver;
}

function check(input: MonitoringInput): void {
  const t = input.thresholds;
  const ratios: (keyof MonitoringThresholds)[] = [
    "diskFreeRatio",
    "btrfsUnallocatedRatio",
    "registry5xxRatio",
  ];
  for (const k of ratios)
    if (!(t[k] > 0 && t[k] < 1))
      throw new RenderError("prometheus", `thresholds.${k}`, `must be between 0 and 1, got ${t[k]}`);
  for (const k of ["maxUptimeDays", "restartsPer15m", "certExpiryDays"] as const)
    if (!(Number.isInteger(t[k]) && t[k] > 0))
      throw new RenderError("prometheus", `thresholds.${k}`, `must be a positive whole number, got ${t[k]}`);
  if (input.hosts.length === 0) throw new RenderError("prometheus", "hosts", "no host to scrape");
}

/** The file_sd target files, job → JSON text. */
export function renderTargets(input: MonitoringInput): Record<MetricsJob, string> {
  check(input);
  const group = (job: MetricsJob, hosts: MonitoringInput["hosts"]) =>
    JSON.stringify(
      hosts.map((h) => ({
        targets: [`${h.address}:${METRICS_PORTS[job]}`],
        labels: { host: h.name, stack: input.stack },
      })),
      null,
      2,
    ) + "\n";
  return {
    node: group("node", input.hosts),
    dockerd: group("dockerd", input.hosts),
    registry: group(
      "registry",
      input.hosts.filter((h) => h.registry),
    ),
  };
}

/** prometheus.yml: one job per metric source, targets from `<targetsDir>/<job>.json`. */
export function renderScrapeConfig(
  input: MonitoringInput,
  targetsDir = "targets",
  rulesFile = "rules.yml",
): string {
  check(input);
  const jobs = Object.keys(METRICS_PORTS) as MetricsJob[];
  const doc = {
    global: {
      scrape_interval: "30s",
      evaluation_interval: "30s",
      external_labels: { berth_stack: input.stack },
    },
    rule_files: [rulesFile],
    scrape_configs: jobs.map((job) => ({
      job_name: `berth-${job}`,
      file_sd_configs: [{ files: [`${targetsDir}/${job}.json`], refresh_interval: "5m" }],
    })),
  };
  return `# berth monitoring ${input.stack}: scrape Berth's hosts (private addresses; the monitoring CIDR may reach them).\n${stringify(doc, { lineWidth: 0 })}`;
}

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: "warning" | "critical" };
  annotations: { summary: string; description: string };
}

/** The alert rules (one group). */
export function renderAlertRules(input: MonitoringInput): string {
  check(input);
  const t = input.thresholds;
  const mount = input.dockerMount ?? "/var/lib/docker";
  const pct = (r: number) => `${Math.round(r * 100)}%`;
  const btrfs = DOCKER_VOLUME_FILESYSTEM[input.storageDriver ?? "btrfs"] === "btrfs";
  const volumeRule: Rule = btrfs
    ? {
        alert: "BerthBtrfsUnallocatedLow",
        expr: `sum by (host, instance, uuid) (node_btrfs_device_unused_bytes{job="berth-node"}) / sum by (host, instance, uuid) (node_btrfs_device_size_bytes{job="berth-node"}) < ${t.btrfsUnallocatedRatio}`,
        for: "30m",
        labels: { severity: "warning" },
        annotations: {
          summary: `{{ $labels.host }}: less than ${pct(t.btrfsUnallocatedRatio)} of the btrfs device unallocated`,
          description:
            "btrfs cannot allocate new chunks when this reaches zero, even with free space inside allocated ones: run a usage-filtered balance.",
        },
      }
    : {
        alert: "BerthDockerVolumeInodesLow",
        expr: `node_filesystem_files_free{job="berth-node",mountpoint="${mount}"} / node_filesystem_files{job="berth-node",mountpoint="${mount}"} < ${t.diskFreeRatio}`,
        for: "10m",
        labels: { severity: "warning" },
        annotations: {
          summary: `{{ $labels.host }}: less than ${pct(t.diskFreeRatio)} of the inodes free on ${mount}`,
          description:
            "The overlay2 driver's ext4 volume has a fixed number of inodes; many small files use them up before the space, and then no file can be created: prune images and containers.",
        },
      };
  const rules: Rule[] = [
    {
      alert: "BerthHostDown",
      expr: 'up{job="berth-node"} == 0',
      for: "5m",
      labels: { severity: "critical" },
      annotations: {
        summary: "{{ $labels.host }} does not answer",
        description:
          "node_exporter on {{ $labels.host }} ({{ $labels.instance }}) has not been scraped for 5 minutes.",
      },
    },
    {
      alert: "BerthDockerVolumeFull",
      expr: `node_filesystem_avail_bytes{job="berth-node",mountpoint="${mount}"} / node_filesystem_size_bytes{job="berth-node",mountpoint="${mount}"} < ${t.diskFreeRatio}`,
      for: "10m",
      labels: { severity: "warning" },
      annotations: {
        summary: `{{ $labels.host }}: less than ${pct(t.diskFreeRatio)} free on ${mount}`,
        description: "Builds will fail when the docker volume fills; prune images or grow the volume.",
      },
    },
    volumeRule,
    {
      alert: "BerthContainerRestarting",
      expr: `increase(berth_container_restart_count{job="berth-node"}[15m]) >= ${t.restartsPer15m}`,
      for: "0m",
      labels: { severity: "warning" },
      annotations: {
        summary: "{{ $labels.host }}: {{ $labels.container }} restarts in a loop",
        description: `{{ $labels.container }} restarted at least ${t.restartsPer15m} times in 15 minutes.`,
      },
    },
    {
      alert: "BerthContainerUnhealthy",
      expr: 'increase(engine_daemon_health_checks_failed_total{job="berth-dockerd"}[10m]) > 3',
      for: "10m",
      labels: { severity: "warning" },
      annotations: {
        summary: "{{ $labels.host }}: containers fail their health checks",
        description:
          "dockerd counted more than 3 failed health checks in 10 minutes, for 10 minutes: `docker ps --filter health=unhealthy` on the host.",
      },
    },
    {
      alert: "BerthRegistryErrors",
      expr: `sum by (host, instance) (rate(registry_http_requests_total{job="berth-registry",code=~"5.."}[10m])) / sum by (host, instance) (rate(registry_http_requests_total{job="berth-registry"}[10m])) > ${t.registry5xxRatio}`,
      for: "10m",
      labels: { severity: "critical" },
      annotations: {
        summary: `the registry on {{ $labels.host }} answers more than ${pct(t.registry5xxRatio)} of requests with 5xx`,
        description: "Pushes and pulls of builds fail; check the registry container's logs and its volume.",
      },
    },
    {
      alert: "BerthUpdateOverdue",
      expr: `time() - node_boot_time_seconds{job="berth-node"} > ${t.maxUptimeDays * 86400}`,
      for: "1h",
      labels: { severity: "warning" },
      annotations: {
        summary: `{{ $labels.host }} has not rebooted into an update for ${t.maxUptimeDays} days`,
        description:
          "Its update windows passed without a reboot: an update is stuck, or builds held the host past every window.",
      },
    },
    {
      alert: "BerthCertificateExpiring",
      expr: `berth_tls_cert_not_after_timestamp_seconds{job="berth-node"} - time() < ${t.certExpiryDays * 86400}`,
      for: "1h",
      labels: { severity: "warning" },
      annotations: {
        summary:
          "{{ $labels.host }}: the {{ $labels.cert }} certificate expires in less than " +
          `${t.certExpiryDays} days`,
        description: "Renew it with the stack (`pulumi up` after the certificate's resource is replaced).",
      },
    },
  ];
  return stringify({ groups: [{ name: `berth-${input.stack}`, rules }] }, { lineWidth: 0 });
}
