/**
 * `berth monitoring <stack> [--out DIR]`: Prometheus configuration for the stack's hosts:
 * `prometheus.yml` (scrape jobs with file-based discovery), `targets/<job>.json` and `rules.yml`.
 * Targets are the hosts' fixed private addresses, which the configuration decides, so the offline
 * output is the real one.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckedStack } from "../stack/validate.ts";
import type { BerthConfig } from "../config/types.ts";
import {
  MONITORING_DEFAULTS,
  renderAlertRules,
  renderScrapeConfig,
  renderTargets,
  type MonitoringInput,
} from "../renderers/prometheus.ts";

/** The renderer's input for a validated configuration. */
export function monitoringInput(cfg: BerthConfig): MonitoringInput {
  return {
    stack: cfg.stack,
    hosts: cfg.hosts.names.map((name, i) => ({
      name,
      address: cfg.hosts.addresses[i] ?? "",
      registry: name === cfg.registry.host,
    })),
    thresholds: MONITORING_DEFAULTS,
    storageDriver: cfg.hosts.storageDriver,
  };
}

/** Writes the files; returns their paths. */
export function writeMonitoring(root: string, stack: string, outDir: string): string[] {
  const input = monitoringInput(loadCheckedStack(root, stack));
  mkdirSync(join(outDir, "targets"), { recursive: true });
  const files: Record<string, string> = {
    "prometheus.yml": renderScrapeConfig(input),
    "rules.yml": renderAlertRules(input),
    ...Object.fromEntries(
      Object.entries(renderTargets(input)).map(([job, text]) => [`targets/${job}.json`, text]),
    ),
  };
  return Object.entries(files).map(([rel, text]) => {
    const path = join(outDir, rel);
    writeFileSync(path, text, { mode: 0o644 });
    return path;
  });
}
