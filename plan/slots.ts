/**
 * The application slots section of `berth plan` (components/slots.ts): each slot's port, health
 * check, limits and who may reach it.
 */
import type { BerthConfig } from "../config/types.ts";

/** One slot as the plan shows it. */
export interface PlanSlot {
  name: string;
  port: number;
  /** `HTTP GET /path` or `command: …`. */
  health: string;
  timeoutSeconds: number;
  memoryMiB: number;
  cpus: number;
  /** Developer sources the security group opens the port to (none: no rule, nobody reaches it). */
  cidrs: string[];
}

/** The slots of a configuration, for plan.json. */
export function planSlots(config: BerthConfig): PlanSlot[] {
  const cidrs = config.services.slotCidrs ?? [];
  return (config.services.slots ?? []).map((s) => ({
    name: s.name,
    port: s.port,
    health:
      s.health.http !== undefined
        ? `HTTP GET ${s.health.http}`
        : `command: ${JSON.stringify(s.health.command ?? [])}`,
    timeoutSeconds: s.health.timeoutSeconds,
    memoryMiB: s.memoryMiB,
    cpus: s.cpus,
    cidrs: [...cidrs],
  }));
}

/** plan.md's section (empty when the stack has no slot). */
export function renderPlanSlots(slots: readonly PlanSlot[] | undefined): string[] {
  if (!slots || slots.length === 0) return [];
  const rows = slots.map(
    (s) =>
      `| ${s.name} | slot-${s.name} → slot-${s.name}-app | ${s.port} (every host's private address) | ${s.cidrs.join(", ") || "none: no rule"} | ${s.health.replace(/\|/g, "\\|")}, ${s.timeoutSeconds} s | ${s.memoryMiB} MiB, ${s.cpus} CPUs |`,
  );
  return [
    "## Application slots",
    "",
    "| slot | front → application | port | open to | health check | limits |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    'The program declares each slot\'s front only; builds replace the application with `berth-slot deploy <slot> <image>` (docs/configuration.md, "Application slots").',
    "",
  ];
}
