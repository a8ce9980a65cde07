/** `berth:registry.upkeep`: defaults, the checks (one error naming every bad field), and where it renders. */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { afterAll, describe, expect, it } from "vitest";

import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { registryUpkeepIssues } from "../../config/validate-registry-upkeep.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { REGISTRY_UPKEEP_DEFAULTS } from "../../renderers/registry-gc.ts";
import { issuesOf } from "../support/cli.ts";

type Doc = { config: Record<string, Record<string, unknown>> };
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A project root holding a copy of a shipped stack, edited by `edit`. */
function rootWith(edit: (config: Doc["config"]) => void, from = "production"): string {
  const root = mkdtempSync(join(tmpdir(), "berth-registry-upkeep-"));
  roots.push(root);
  mkdirSync(join(root, "stacks"));
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", `Pulumi.${from}.yaml`), "utf8")) as Doc;
  edit(doc.config);
  writeFileSync(join(root, "stacks", `Pulumi.${from}.yaml`), stringify(doc));
  mkdirSync(join(root, "snippets"));
  writeFileSync(
    join(root, "snippets", "ci-inotify.json"),
    readFileSync(join(PROJECT_ROOT, "snippets", "ci-inotify.json")),
  );
  return root;
}

describe("defaults and where they render", () => {
  it("every shipped stack gets the defaults, on the registry host only", () => {
    for (const stack of ["testing", "staging", "production"]) {
      const c = loadStack(PROJECT_ROOT, stack);
      expect(c.registry.upkeep).toEqual(REGISTRY_UPKEEP_DEFAULTS);
      const [first, ...others] = c.hosts.names;
      expect(first).toBe(c.registry.host);
      expect(hostIgnitionBase(c, first!).registryUpkeep).toEqual(REGISTRY_UPKEEP_DEFAULTS);
      for (const h of others) expect(hostIgnitionBase(c, h).registryUpkeep).toBeUndefined();
    }
  });

  it("the default window misses the registry host's default update windows", () => {
    expect(registryUpkeepIssues("production", { hosts: { count: 3 } })).toEqual([]);
    expect(registryUpkeepIssues("production", { hosts: { os: "flatcar" } })).toEqual([]);
  });
});

describe("validation (one error naming every bad field)", () => {
  it("refuses N < 1, a bad pattern, a non-ERE pattern and an unparsable schedule together", () => {
    const root = rootWith((c) => {
      c["berth:registry"]!.upkeep = {
        keepTags: 0,
        protectedTags: ["^v?[0-9]+$", "^(release", "^v\\d+$"],
        gcSchedule: "every sunday",
      };
    });
    const issues = issuesOf(() => loadStack(root, "production"));
    expect(issues.map((i) => i.path).sort()).toEqual(
      [
        "berth:registry.upkeep.keepTags",
        "berth:registry.upkeep.protectedTags[1]",
        "berth:registry.upkeep.protectedTags[2]",
        "berth:registry.upkeep.gcSchedule",
      ].sort(),
    );
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    expect(byPath.get("berth:registry.upkeep.protectedTags[1]")).toMatch(/not a valid regular expression/);
    expect(byPath.get("berth:registry.upkeep.protectedTags[2]")).toMatch(/write \[0-9\] for \\d/);
    expect(byPath.get("berth:registry.upkeep.gcSchedule")).toMatch(/is not a weekly systemd calendar time/);
  });

  it("refuses a window that overlaps the registry host's update window, naming both", () => {
    const root = rootWith((c) => {
      c["berth:registry"]!.upkeep = { gcSchedule: "Sat 01:30", gcWindowMinutes: 45 };
    });
    const issues = issuesOf(() => loadStack(root, "production"));
    expect(issues.map((i) => i.path)).toEqual(["berth:registry.upkeep.gcSchedule"]);
    expect(issues[0]?.message).toMatch(
      /the garbage collection window \(Sat 01:30, 45 min, .*\) overlaps production-ci-1's OS update window \(Sat 02:00, 60 min/,
    );
    // Thirty minutes earlier it ends as the update window starts: accepted.
    const ok = rootWith((c) => {
      c["berth:registry"]!.upkeep = { gcSchedule: "Sat 01:00", gcWindowMinutes: 60 };
    });
    expect(loadStack(ok, "production").registry.upkeep.gcSchedule).toBe("Sat 01:00");
  });

  it("compares across time zones, winter and summer", () => {
    // Updates at 02:00 New York time are 07:00 (winter, EST) or 06:00 (summer, EDT) in UTC.
    const raw = (gcSchedule: string) => ({
      hosts: {
        timezone: "UTC",
        updates: {
          timeZone: "America/New_York",
          windows: [{ days: ["Sun"], startTime: "02:00", lengthMinutes: 60 }],
        },
      },
      registry: { upkeep: { gcSchedule, gcWindowMinutes: 30 } },
    });
    expect(registryUpkeepIssues("s", raw("Sun 06:15"))).toHaveLength(1); // summer
    expect(registryUpkeepIssues("s", raw("Sun 07:15"))).toHaveLength(1); // winter
    expect(registryUpkeepIssues("s", raw("Sun 02:00"))).toEqual([]);
    expect(registryUpkeepIssues("s", raw("Sun 08:00"))).toEqual([]);
  });

  it("catches a window that wraps past Sunday 24:00 into Monday's update window", () => {
    const raw = {
      hosts: { updates: { windows: [{ days: ["Mon"], startTime: "00:30", lengthMinutes: 60 }] } },
      registry: { upkeep: { gcSchedule: "Sun 23:45", gcWindowMinutes: 60 } },
    };
    expect(registryUpkeepIssues("s", raw)[0]?.message).toMatch(
      /overlaps s-ci-1's OS update window \(Mon 00:30/,
    );
  });

  it("refuses a daily window longer than a day's gap, and leaves non-periodic strategies alone", () => {
    expect(
      registryUpkeepIssues("s", { registry: { upkeep: { gcSchedule: "daily", gcWindowMinutes: 1440 } } })[0]
        ?.path,
    ).toBe("berth:registry.upkeep.gcWindowMinutes");
    expect(
      registryUpkeepIssues("s", {
        hosts: { updates: { strategy: "immediate" } },
        registry: { upkeep: { gcSchedule: "Sat 02:00" } },
      }),
    ).toEqual([]);
  });
});
