/** `berth:hosts.updates` / `berth:hosts.upkeep`: defaults, staggering per host, and the checks. */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { describe, expect, it } from "vitest";

import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { updatesIssues } from "../../config/validate-updates.ts";
import { hostUpdatePolicy } from "../../stack/host-ignition.ts";
import { issuesOf } from "../support/cli.ts";

type Doc = { config: Record<string, Record<string, unknown>> };

/** A project root holding a copy of a shipped stack, its berth:hosts edited by `edit`. */
function rootWith(edit: (hosts: Record<string, unknown>) => void, from = "production"): string {
  const root = mkdtempSync(join(tmpdir(), "berth-updates-"));
  mkdirSync(join(root, "stacks"));
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", `Pulumi.${from}.yaml`), "utf8")) as Doc;
  edit(doc.config["berth:hosts"] as Record<string, unknown>);
  writeFileSync(join(root, "stacks", `Pulumi.${from}.yaml`), stringify(doc));
  // extraIgnition paths are relative to the root
  mkdirSync(join(root, "snippets"));
  for (const f of ["ci-inotify.json"]) {
    try {
      writeFileSync(join(root, "snippets", f), readFileSync(join(PROJECT_ROOT, "snippets", f)));
    } catch {
      // not every stack uses it
    }
  }
  return root;
}

describe("defaults", () => {
  it("production: periodic weekend nights, one hour per host, in the hosts' time zone", () => {
    const c = loadStack(PROJECT_ROOT, "production");
    expect(c.hosts.updates).toEqual({
      strategy: "periodic",
      staggerMinutes: 60,
      maxBuildWaitHours: 6,
    });
    expect(hostUpdatePolicy(c, c.hosts.names[0]!).windows).toEqual([
      { days: ["Sat", "Sun"], startTime: "02:00", lengthMinutes: 60 },
    ]);
    expect(c.hosts.names.map((h) => hostUpdatePolicy(c, h).windows[0]?.startTime)).toEqual([
      "02:00",
      "03:00",
      "04:00",
    ]);
    expect(hostUpdatePolicy(c, c.hosts.names[0]!).timeZone).toBe(c.hosts.timezone);
    expect(c.hosts.upkeep).toEqual({
      containerMaxAgeHours: 24,
      imageMaxAgeHours: 72,
      buildCacheMaxGiB: 10,
      workspaceMaxAgeDays: 7,
      freeSpaceWarnPercent: 15,
      journalMaxUse: "1G",
      balanceDataUsage: 50,
      balanceMetadataUsage: 30,
    });
  });
});

describe("validation (one error naming every bad field)", () => {
  it("refuses overlapping hosts, a fleet_lock without URL and a bad time zone together", () => {
    const root = rootWith((h) => {
      h.updates = { strategy: "periodic", staggerMinutes: 30, timeZone: "Mars/Olympus" };
    });
    const issues = issuesOf(() => loadStack(root, "production"));
    expect(issues.map((i) => i.path)).toEqual([
      "berth:hosts.updates.staggerMinutes",
      "berth:hosts.updates.timeZone",
    ]);
    expect(issues[0]?.message).toMatch(
      /production-ci-1 \(Sat 02:00, 60 min\) and production-ci-2 \(Sat 02:30\) would share a maintenance window/,
    );
  });

  it("refuses a stagger that pushes the last host past the end of the week", () => {
    const issues = updatesIssues("s", {
      hosts: { count: 3, updates: { windows: [{ days: ["Sun"], startTime: "22:00", lengthMinutes: 60 }] } },
    });
    expect(issues).toEqual([
      {
        path: "berth:hosts.updates.staggerMinutes",
        message: expect.stringMatching(
          /^s-ci-3's window would start after Sunday 24:00 \(3 hosts × 60 minutes/,
        ),
      },
    ]);
  });

  it("refuses a window running past Sunday 24:00 and a start past the week", () => {
    expect(
      updatesIssues("s", {
        hosts: { count: 1, updates: { windows: [{ days: ["Sun"], startTime: "23:30", lengthMinutes: 60 }] } },
      }).map((i) => i.message),
    ).toEqual([expect.stringMatching(/s-ci-1's window from Sun 23:30 runs past the end of the week/)]);
    expect(
      updatesIssues("s", {
        hosts: {
          count: 2,
          updates: {
            staggerMinutes: 240,
            windows: [{ days: ["Sun"], startTime: "22:00", lengthMinutes: 60 }],
          },
        },
      }).map((i) => i.message),
    ).toEqual([expect.stringMatching(/s-ci-2's window would start after Sunday 24:00/)]);
  });

  it("accepts the defaults on 22 hosts and refuses them on 23 (its Sunday window would move to Monday)", () => {
    expect(updatesIssues("s", { hosts: { count: 22 } })).toEqual([]);
    expect(updatesIssues("s", { hosts: { count: 23 } }).map((i) => i.message)).toEqual([
      expect.stringMatching(/^s-ci-23's window would start after Sunday 24:00/),
    ]);
  });

  it("refuses a Friday host reaching into Saturday's first window", () => {
    const issues = updatesIssues("s", {
      hosts: {
        count: 4,
        updates: {
          staggerMinutes: 480,
          windows: [{ days: ["Fri", "Sat"], startTime: "00:00", lengthMinutes: 60 }],
        },
      },
    });
    // host 4 starts 24 h later: its Friday window lands on Saturday 00:00, where host 1's Saturday window is.
    expect(issues.map((i) => i.message)).toEqual([
      expect.stringMatching(
        /s-ci-1 \(Sat 00:00, 60 min\) and s-ci-4 \(Sat 00:00\) would share a maintenance window/,
      ),
    ]);
  });

  it("fleet_lock needs its URL; the URL needs fleet_lock", () => {
    expect(
      updatesIssues("s", { hosts: { count: 3, updates: { strategy: "fleet_lock" } } }).map((i) => i.path),
    ).toEqual(["berth:hosts.updates.fleetLockUrl"]);
    expect(
      updatesIssues("s", { hosts: { count: 3, updates: { fleetLockUrl: "http://lock:8080/" } } }).map(
        (i) => i.message,
      ),
    ).toEqual([expect.stringMatching(/only used by strategy fleet_lock/)]);
    expect(
      updatesIssues("s", {
        hosts: { count: 3, updates: { strategy: "fleet_lock", fleetLockUrl: "http://lock:8080/" } },
      }),
    ).toEqual([]);
  });

  it("immediate and fleet_lock skip the window checks (no stagger needed)", () => {
    expect(
      updatesIssues("s", { hosts: { count: 5, updates: { strategy: "immediate", staggerMinutes: 0 } } }),
    ).toEqual([]);
  });

  it("Flatcar: one window, one day or all seven, the host's time zone, no fleet_lock", () => {
    const issues = updatesIssues("s", {
      hosts: {
        os: "flatcar",
        count: 1,
        timezone: "UTC",
        updates: {
          timeZone: "Europe/Rome",
          windows: [{ days: ["Sat", "Sun"], startTime: "02:00", lengthMinutes: 60 }],
        },
      },
    });
    expect(issues.map((i) => i.path).sort()).toEqual([
      "berth:hosts.updates.timeZone",
      "berth:hosts.updates.windows[0].days",
    ]);
    expect(
      updatesIssues("s", {
        hosts: { os: "flatcar", updates: { strategy: "fleet_lock", fleetLockUrl: "http://l/" } },
      }).map((i) => i.path),
    ).toEqual(["berth:hosts.updates.strategy"]);
    // The Flatcar default (Sunday 02:00) passes on three hosts.
    expect(updatesIssues("s", { hosts: { os: "flatcar", count: 3 } })).toEqual([]);
    expect(
      updatesIssues("s", {
        hosts: {
          os: "flatcar",
          count: 2,
          updates: { windows: [{ days: ["Sat"], startTime: "02:00", lengthMinutes: 60 }] },
        },
      }),
    ).toEqual([]);
  });

  it("the schema refuses bad window fields and unknown upkeep keys, with paths", () => {
    const root = rootWith((h) => {
      h.updates = { windows: [{ days: ["Caturday"], startTime: "2:00", lengthMinutes: 5 }] };
      h.upkeep = { imageMaxAgeHour: 3, journalMaxUse: "lots" };
    });
    const paths = issuesOf(() => loadStack(root, "production")).map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "berth:hosts.updates.windows[0].days[0]",
        "berth:hosts.updates.windows[0].startTime",
        "berth:hosts.updates.windows[0].lengthMinutes",
        "berth:hosts.upkeep.imageMaxAgeHour",
        "berth:hosts.upkeep.journalMaxUse",
      ]),
    );
  });
});
