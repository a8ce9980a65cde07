/**
 * Cross-field checks of `berth:registry.upkeep` that a JSON Schema cannot express: every protected
 * tag pattern is a POSIX extended regular expression the script can use, the GC schedule is a
 * weekly systemd calendar time, and the GC window never overlaps the registry host's OS update
 * window (the host could reboot in the middle of a garbage collection). Defensive: runs on raw
 * values that may also have schema errors (wrong types are left to the schema).
 */
import type { ConfigIssue } from "./errors.ts";
import { hostOsOf, hostTimeZoneOf, isKnownTimeZone, isWindow } from "./validate-updates.ts";
import {
  REGISTRY_UPKEEP_DEFAULTS,
  parseGcSchedule,
  protectedPatternIssue,
} from "../renderers/registry-gc.ts";
import {
  UPDATE_DEFAULTS,
  WEEKDAYS,
  WEEK_MINUTES,
  defaultWindows,
  weekIntervals,
} from "../renderers/updates.ts";
import { isObj, type Obj } from "./raw.ts";

const P = "berth:registry.upkeep";

/** Minutes `zone` is ahead of UTC at `instant`. */
function zoneOffsetMinutes(zone: string, instant: Date): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
  }).formatToParts(instant);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  const local = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"));
  return Math.round((local - Math.floor(instant.getTime() / 60000) * 60000) / 60000);
}

/** Winter and summer (northern and southern zones both change between them). */
const SEASONS = [new Date(Date.UTC(2026, 0, 15)), new Date(Date.UTC(2026, 6, 15))];

const at = (m: number): string => {
  const w = ((m % WEEK_MINUTES) + WEEK_MINUTES) % WEEK_MINUTES;
  return `${WEEKDAYS[Math.floor(w / 1440)] ?? "?"} ${String(Math.floor((w % 1440) / 60)).padStart(2, "0")}:${String(w % 60).padStart(2, "0")}`;
};

/** True when [a, a+al) and [b, b+bl) meet, on a circular week. */
function overlapsInWeek(a: number, al: number, b: number, bl: number): boolean {
  for (const shift of [-WEEK_MINUTES, 0, WEEK_MINUTES]) {
    const s = b + shift;
    if (a < s + bl && s < a + al) return true;
  }
  return false;
}

/** Problems of `berth:registry.upkeep` in a stack's raw values (empty when none). */
export function registryUpkeepIssues(stack: string, raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const registry = isObj(raw.registry) ? raw.registry : {};
  const u = isObj(registry.upkeep) ? registry.upkeep : {};
  const hosts = isObj(raw.hosts) ? raw.hosts : {};

  if (Array.isArray(u.protectedTags))
    u.protectedTags.forEach((p, i) => {
      if (typeof p !== "string") return; // the schema says so
      const issue = protectedPatternIssue(p);
      if (issue !== undefined)
        issues.push({ path: `${P}.protectedTags[${i}]`, message: `${JSON.stringify(p)} ${issue}` });
    });

  const scheduleRaw = u.gcSchedule ?? REGISTRY_UPKEEP_DEFAULTS.gcSchedule;
  if (typeof scheduleRaw !== "string") return issues;
  const schedule = parseGcSchedule(scheduleRaw);
  if (typeof schedule === "string") {
    issues.push({ path: `${P}.gcSchedule`, message: schedule });
    return issues;
  }
  const length = u.gcWindowMinutes ?? REGISTRY_UPKEEP_DEFAULTS.gcWindowMinutes;
  if (typeof length !== "number" || !Number.isInteger(length) || length < 1) return issues;
  const starts = schedule.starts;
  for (let i = 0; i < starts.length; i++) {
    const a = starts[i] ?? 0;
    const b = starts[(i + 1) % starts.length] ?? 0;
    const gap = starts.length === 1 ? WEEK_MINUTES : (b - a + WEEK_MINUTES) % WEEK_MINUTES;
    if (length >= gap) {
      issues.push({
        path: `${P}.gcWindowMinutes`,
        message: `a ${length}-minute window from ${at(a)} runs into the next one (${at(b)}); shorten it or run less often`,
      });
      return issues;
    }
  }

  // The registry host (the first host) and its OS update windows (index 0: not staggered).
  const u2 = isObj(hosts.updates) ? hosts.updates : {};
  if ((u2.strategy ?? UPDATE_DEFAULTS.strategy) !== "periodic") return issues;
  const os = hostOsOf(hosts.os);
  const windows: unknown[] = Array.isArray(u2.windows) ? u2.windows : defaultWindows(os);
  if (!windows.every(isWindow)) return issues;
  const hostZone = hostTimeZoneOf(hosts.timezone);
  const updateZone = typeof u2.timeZone === "string" ? u2.timeZone : hostZone;
  if (!isKnownTimeZone(hostZone) || !isKnownTimeZone(updateZone)) return issues;
  const host = `${stack}-ci-1`;
  for (const season of SEASONS) {
    // Both in the host's local time: shift the update windows by the difference of the zones.
    const shift = zoneOffsetMinutes(hostZone, season) - zoneOffsetMinutes(updateZone, season);
    for (const w of weekIntervals(windows)) {
      const ws = w.start + shift;
      for (const s of starts) {
        if (overlapsInWeek(s, length, ws, w.end - w.start)) {
          issues.push({
            path: `${P}.gcSchedule`,
            message: `the garbage collection window (${at(s)}, ${length} min, ${hostZone}) overlaps ${host}'s OS update window (${at(ws)}, ${w.end - w.start} min, ${hostZone}), where the host that runs the registry may reboot; move gcSchedule or the update windows (berth:hosts.updates.windows)`,
          });
          return issues;
        }
      }
    }
  }
  return issues;
}
