/**
 * Cross-field checks of `berth:hosts.updates` that a JSON Schema cannot express: every host's
 * staggered windows fit in the week and no two hosts share a minute of window; `fleet_lock` has its
 * lock server; Flatcar gets only what locksmithd can do. Defensive: runs on raw values that may also
 * have schema errors (wrong types are left to the schema), so every problem is reported together.
 */
import type { ConfigIssue } from "./errors.ts";
import {
  UPDATE_DEFAULTS,
  WEEK_MINUTES,
  defaultWindows,
  WEEKDAYS,
  staggeredWindows,
  weekIntervals,
  type UpdateWindow,
} from "../renderers/updates.ts";
import { isObj, type Obj } from "./raw.ts";
import { berthSchema } from "./schema.ts";
import { HOST_OSES, type HostOs } from "../renderers/host-os.ts";

/** `berth:hosts`' schema: its defaults fill in what the raw values leave out. */
const HOSTS = berthSchema.properties.hosts.properties;

/** The hosts' OS in raw values: the schema's default when absent or not one of Berth's. */
export function hostOsOf(os: unknown): HostOs {
  return HOST_OSES.find((o) => o === os) ?? HOSTS.os.default;
}

/** The hosts' time zone in raw values: the schema's default when absent or not a string. */
export function hostTimeZoneOf(zone: unknown): string {
  return typeof zone === "string" ? zone : HOSTS.timezone.default;
}

const P = "berth:hosts.updates";

/** True when `zone` is an IANA time zone this Node knows (the hosts use the same tz database). */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** A well-formed update window in raw values (the schema reports what is wrong with one that is not). */
export function isWindow(w: unknown): w is UpdateWindow {
  return (
    isObj(w) &&
    Array.isArray(w.days) &&
    w.days.length > 0 &&
    w.days.every((d) => (WEEKDAYS as readonly unknown[]).includes(d)) &&
    typeof w.startTime === "string" &&
    /^([01]\d|2[0-3]):[0-5]\d$/.test(w.startTime) &&
    typeof w.lengthMinutes === "number" &&
    Number.isInteger(w.lengthMinutes) &&
    w.lengthMinutes > 0
  );
}

const at = (m: number): string =>
  `${WEEKDAYS[Math.floor(m / 1440) % 7] ?? "?"} ${String(Math.floor((m % 1440) / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;

/** Problems of `berth:hosts.updates` in a stack's raw values (empty when none). */
export function updatesIssues(stack: string, raw: Obj): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const hosts = isObj(raw.hosts) ? raw.hosts : {};
  const u = isObj(hosts.updates) ? hosts.updates : {};
  const strategy = u.strategy ?? UPDATE_DEFAULTS.strategy;
  const os = hostOsOf(hosts.os);

  if (strategy === "fleet_lock" && u.fleetLockUrl === undefined)
    issues.push({
      path: `${P}.fleetLockUrl`,
      message:
        'strategy fleet_lock needs the lock server\'s base URL, e.g. "http://fleetlock.ci.example.com:8080/"; set it or use strategy periodic',
    });
  if (u.fleetLockUrl !== undefined && strategy !== "fleet_lock")
    issues.push({
      path: `${P}.fleetLockUrl`,
      message: `is only used by strategy fleet_lock, but the strategy is ${String(strategy)}; remove it or set strategy: fleet_lock`,
    });
  if (typeof u.timeZone === "string" && /^[A-Za-z_]/.test(u.timeZone) && !isKnownTimeZone(u.timeZone))
    issues.push({
      path: `${P}.timeZone`,
      message: `"${u.timeZone}" is not an IANA time zone; use a name such as "UTC" or "Europe/Rome"`,
    });

  if (os === "flatcar") {
    if (strategy === "fleet_lock")
      issues.push({
        path: `${P}.strategy`,
        message:
          "Flatcar's locksmithd takes its lock from etcd, not from a fleet_lock server; use periodic or immediate on Flatcar",
      });
    const hostZone = hostTimeZoneOf(hosts.timezone);
    if (typeof u.timeZone === "string" && u.timeZone !== hostZone)
      issues.push({
        path: `${P}.timeZone`,
        message: `Flatcar's reboot window is in the host's own time zone (${hostZone}); remove timeZone or set it to "${hostZone}"`,
      });
  }

  if (strategy !== "periodic") return issues;
  const windows: unknown[] = Array.isArray(u.windows) ? u.windows : defaultWindows(os);
  if (!windows.every(isWindow)) return issues; // the schema reports the bad fields
  if (os === "flatcar") {
    if (windows.length !== 1)
      issues.push({
        path: `${P}.windows`,
        message: `Flatcar's locksmithd takes one reboot window, got ${windows.length}; keep one`,
      });
    windows.forEach((w, i) => {
      if (w.days.length !== 1 && w.days.length !== 7)
        issues.push({
          path: `${P}.windows[${i}].days`,
          message: `Flatcar's reboot window is on one day or on all seven, got ${w.days.join(", ")}`,
        });
    });
  }

  const count =
    typeof hosts.count === "number" && Number.isInteger(hosts.count) && hosts.count >= 1 ? hosts.count : 1;
  const stagger =
    typeof u.staggerMinutes === "number" && Number.isInteger(u.staggerMinutes) && u.staggerMinutes >= 0
      ? u.staggerMinutes
      : UPDATE_DEFAULTS.staggerMinutes;
  const fix = `shorten the windows, lower staggerMinutes (${stagger}) or move the windows earlier in the week`;
  const perHost: { host: string; start: number; end: number }[] = [];
  for (let i = 0; i < count; i++) {
    const host = `${stack}-ci-${i + 1}`;
    let shifted: UpdateWindow[];
    try {
      shifted = staggeredWindows(windows, i, stagger);
    } catch {
      issues.push({
        path: `${P}.staggerMinutes`,
        message: `${host}'s window would start after Sunday 24:00 (${count} hosts × ${stagger} minutes of stagger); ${fix}`,
      });
      return issues;
    }
    for (const iv of weekIntervals(shifted)) {
      if (iv.end > WEEK_MINUTES) {
        issues.push({
          path: `${P}.windows`,
          message: `${host}'s window from ${at(iv.start)} runs past the end of the week (Sunday 24:00); ${fix}`,
        });
        return issues;
      }
      perHost.push({ host, ...iv });
    }
  }
  perHost.sort((a, b) => a.start - b.start);
  for (let a = 0; a < perHost.length; a++) {
    for (let b = a + 1; b < perHost.length; b++) {
      const x = perHost[a];
      const y = perHost[b];
      if (!x || !y || y.start >= x.end) break;
      if (x.host === y.host) continue;
      issues.push({
        path: `${P}.staggerMinutes`,
        message: `${x.host} (${at(x.start)}, ${x.end - x.start} min) and ${y.host} (${at(y.start)}) would share a maintenance window; staggerMinutes must be at least the longest window's length and all ${count} hosts must fit before the next window; ${fix}`,
      });
      return issues;
    }
  }
  return issues;
}
