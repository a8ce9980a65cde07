/**
 * The update-policy renderers: Zincati's TOML parses (smol-toml) into the structure Zincati reads,
 * Flatcar's update.conf, staggering, and the windows checked by the real `systemd-analyze calendar`.
 */
import { spawnSync } from "node:child_process";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";

import {
  renderBuildInhibitScript,
  renderBuildInhibitUnit,
  renderFlatcarUpdateConf,
  renderZincatiToml,
  staggeredWindows,
  weekIntervals,
  windowCalendarExpressions,
  type HostUpdatePolicy,
} from "../../renderers/updates.ts";
import { requireTools } from "../support/tools.ts";

const periodic: HostUpdatePolicy = {
  strategy: "periodic",
  windows: [
    { days: ["Sat", "Sun"], startTime: "02:00", lengthMinutes: 60 },
    { days: ["Wed"], startTime: "22:30", lengthMinutes: 90 },
  ],
  timeZone: "Europe/Rome",
  maxBuildWaitHours: 6,
};

const tools = requireTools("systemd-analyze calendar", [
  { tool: "systemd-analyze", debianPackage: "systemd" },
]);

describe("renderZincatiToml", () => {
  it("periodic: parses to Zincati's keys, windows in order, time zone under [updates.periodic]", () => {
    const text = renderZincatiToml(periodic);
    expect(parseToml(text)).toEqual({
      updates: {
        strategy: "periodic",
        periodic: {
          time_zone: "Europe/Rome",
          window: [
            { days: ["Sat", "Sun"], start_time: "02:00", length_minutes: 60 },
            { days: ["Wed"], start_time: "22:30", length_minutes: 90 },
          ],
        },
      },
    });
    expect(text).toContain("# window 1: Sat,Sun *-*-* 02:00:00 Europe/Rome, 60 minutes\n");
    expect(text).toContain("[[updates.periodic.window]]");
  });

  it("fleet_lock: base_url under [updates.fleet_lock]; refuses a missing URL", () => {
    const doc = parseToml(
      renderZincatiToml({ ...periodic, strategy: "fleet_lock", fleetLockUrl: "http://lock.example:8080/" }),
    );
    expect(doc).toEqual({
      updates: { strategy: "fleet_lock", fleet_lock: { base_url: "http://lock.example:8080/" } },
    });
    expect(() => renderZincatiToml({ ...periodic, strategy: "fleet_lock" })).toThrow(/fleetLockUrl/);
  });

  it("immediate: only the strategy", () => {
    expect(parseToml(renderZincatiToml({ ...periodic, strategy: "immediate" }))).toEqual({
      updates: { strategy: "immediate" },
    });
  });
});

describe("renderFlatcarUpdateConf", () => {
  const one = { ...periodic, windows: [{ days: ["Sat" as const], startTime: "03:00", lengthMinutes: 60 }] };
  it("one day: REBOOT_STRATEGY=reboot with a day and start", () => {
    expect(renderFlatcarUpdateConf(one)).toBe(
      "# Berth: when this host may reboot into a downloaded OS update (rendered, first boot).\n" +
        'REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_WINDOW_START="Sat 03:00"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=60m\n',
    );
  });
  it("every day: a start without a day; immediate: no window", () => {
    const daily = {
      ...one,
      windows: [
        {
          days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const,
          startTime: "04:15",
          lengthMinutes: 30,
        },
      ],
    };
    expect(
      renderFlatcarUpdateConf({
        ...daily,
        windows: [{ ...daily.windows[0]!, days: [...daily.windows[0]!.days] }],
      }),
    ).toContain('LOCKSMITHD_REBOOT_WINDOW_START="04:15"\n');
    expect(renderFlatcarUpdateConf({ ...one, strategy: "immediate" })).not.toContain("WINDOW");
  });
  it("refuses what locksmithd cannot do", () => {
    expect(() => renderFlatcarUpdateConf(periodic)).toThrow(/exactly one reboot window/);
    expect(() => renderFlatcarUpdateConf({ ...periodic, windows: [periodic.windows[0]!] })).toThrow(
      /one day or on every day/,
    );
    expect(() =>
      renderFlatcarUpdateConf({ ...one, strategy: "fleet_lock", fleetLockUrl: "http://x/" }),
    ).toThrow(/fleet_lock is not supported/);
  });
});

describe("staggeredWindows", () => {
  const base = [{ days: ["Sat" as const, "Sun" as const], startTime: "22:30", lengthMinutes: 60 }];
  it("host n starts n × stagger later, moving the days along past midnight", () => {
    expect(staggeredWindows(base, 0, 60)).toEqual(base);
    expect(staggeredWindows(base, 1, 60)).toEqual([
      { days: ["Sat", "Sun"], startTime: "23:30", lengthMinutes: 60 },
    ]);
    expect(staggeredWindows([{ ...base[0]!, days: ["Fri", "Sat"] }], 2, 60)).toEqual([
      { days: ["Sat", "Sun"], startTime: "00:30", lengthMinutes: 60 },
    ]);
  });
  it("refuses a window pushed past the end of the week", () => {
    expect(() => staggeredWindows(base, 2, 60)).toThrow(/past the end of the week/);
  });
  it("weekIntervals: minutes after Monday 00:00", () => {
    expect(weekIntervals(base)).toEqual([
      { start: 5 * 1440 + 1350, end: 5 * 1440 + 1410 },
      { start: 6 * 1440 + 1350, end: 6 * 1440 + 1410 },
    ]);
  });
});

describe.skipIf(tools.skip)("systemd-analyze calendar accepts every window and gives its next start", () => {
  it.each([0, 1, 2])("host %i of a three-host stack (default-like windows, 60 min stagger)", (i) => {
    const windows = staggeredWindows(
      [{ days: ["Sat", "Sun"], startTime: "02:00", lengthMinutes: 60 }],
      i,
      60,
    );
    const [expr] = windowCalendarExpressions({ windows, timeZone: "Europe/Rome" });
    // Next elapse is shown in the caller's zone: ask in the windows' own zone.
    const r = spawnSync("systemd-analyze", ["calendar", expr!], {
      encoding: "utf8",
      env: { ...process.env, TZ: "Europe/Rome" },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Normalized form: Sat,Sun *-*-* 0${2 + i}:00:00 Europe/Rome`);
    expect(r.stdout).toMatch(new RegExp(`Next elapse: (Sat|Sun) \\d{4}-\\d\\d-\\d\\d 0${2 + i}:00:00 CES?T`));
  });
  it("is a meaningful check: it refuses a malformed window", () => {
    const r = spawnSync("systemd-analyze", ["calendar", "Sat,Sun *-*-* 25:00:00 Europe/Rome"], {
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
  });
});

describe("the build inhibitor", () => {
  it("script: --check mode, block-mode shutdown inhibitor, the plugin's label", () => {
    const s = renderBuildInhibitScript();
    expect(s.startsWith("#!/bin/bash\n")).toBe(true);
    expect(s).toContain("systemd-inhibit --what=shutdown --mode=block");
    expect(s).toContain("PLUGIN_LABEL=com.nirima.jenkins.plugins.docker.JenkinsId\n");
    expect(s).toContain("if [[ ${1:-} == --check ]]; then");
  });
  it("unit: the limit in seconds, after docker", () => {
    const u = renderBuildInhibitUnit("/opt/bin", { maxBuildWaitHours: 4 });
    expect(u).toContain("Environment=BERTH_MAX_HOLD_SECONDS=14400\n");
    expect(u).toContain("ExecStart=/opt/bin/berth-build-inhibit\n");
    expect(u).toContain("After=docker.service\n");
  });
  it("bash -n accepts the script", () => {
    const r = spawnSync("bash", ["-n"], {
      input: renderBuildInhibitScript(),
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
