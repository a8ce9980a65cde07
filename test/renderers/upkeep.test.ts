/** The disk-upkeep renderers: scripts parse, units carry the settings, timers' calendars are valid. */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import {
  UPKEEP_DEFAULTS,
  UPKEEP_SCHEDULES,
  renderBtrfsMaintenanceScript,
  renderDiskCheckScript,
  renderDockerUpkeepScript,
  renderJournaldDropin,
  renderUpkeepUnits,
} from "../../renderers/upkeep.ts";
import { requireTools } from "../support/tools.ts";

const tools = requireTools("systemd-analyze calendar", [
  { tool: "systemd-analyze", debianPackage: "systemd" },
]);

describe("upkeep scripts", () => {
  it.each([
    ["docker upkeep", renderDockerUpkeepScript()],
    ["btrfs maintenance", renderBtrfsMaintenanceScript()],
    ["disk check", renderDiskCheckScript()],
    ["disk check with inodes (overlay2 hosts)", renderDiskCheckScript({ inodes: true })],
  ])("bash -n accepts the %s script", (_name, text) => {
    expect(text.startsWith("#!/bin/bash\n")).toBe(true);
    const r = spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("balance uses usage filters, never a full balance", () => {
    expect(renderBtrfsMaintenanceScript()).toContain('btrfs balance start -dusage="$d" -musage="$m" "$mnt"');
  });

  it("the image prune keeps images in use and images with the keep label", () => {
    const s = renderDockerUpkeepScript();
    expect(s).toContain('docker image prune -a -f --filter "until=$cutoff" --filter "label!=org.berth.keep"');
    expect(s).not.toMatch(/^\s*docker volume prune/m);
  });
});

describe("upkeep units of an overlay2 host (ext4 Docker volume)", () => {
  const units = renderUpkeepUnits("/opt/bin", "/var/lib/docker", UPKEEP_DEFAULTS, { btrfs: false });

  it("leave out the btrfs balance and scrub, keep the prune and the free-space check", () => {
    expect(units.map((u) => `${u.name}:${String(u.enabled)}`)).toEqual([
      "berth-docker-upkeep.service:false",
      "berth-docker-upkeep.timer:true",
      "berth-disk-check.service:false",
      "berth-disk-check.timer:true",
    ]);
    expect(units.find((u) => u.name === "berth-disk-check.service")?.contents).toContain(
      "ExecStart=/opt/bin/berth-disk-check 15 /var/lib/docker /\n",
    );
  });

  it("are the btrfs host's units minus the btrfs ones, byte for byte", () => {
    const btrfs = renderUpkeepUnits("/opt/bin", "/var/lib/docker", UPKEEP_DEFAULTS);
    expect(units).toEqual(btrfs.filter((u) => !u.name.startsWith("berth-btrfs-")));
  });
});

describe("upkeep units", () => {
  const units = renderUpkeepUnits("/usr/local/bin", "/var/lib/docker", {
    ...UPKEEP_DEFAULTS,
    buildCacheMaxGiB: 3,
  });
  const byName = Object.fromEntries(units.map((u) => [u.name, u]));

  it("four services, each with an enabled timer", () => {
    expect(units.map((u) => `${u.name}:${String(u.enabled)}`)).toEqual([
      "berth-docker-upkeep.service:false",
      "berth-docker-upkeep.timer:true",
      "berth-btrfs-balance.service:false",
      "berth-btrfs-balance.timer:true",
      "berth-btrfs-scrub.service:false",
      "berth-btrfs-scrub.timer:true",
      "berth-disk-check.service:false",
      "berth-disk-check.timer:true",
    ]);
  });

  it("the settings reach the command lines", () => {
    expect(byName["berth-docker-upkeep.service"]?.contents).toContain(
      "ExecStart=/usr/local/bin/berth-docker-upkeep --container-max-age-hours 24 --image-max-age-hours 72 --build-cache-max-bytes 3221225472 --workspace-max-age-days 7\n",
    );
    expect(byName["berth-btrfs-balance.service"]?.contents).toContain(
      "ExecStart=/usr/local/bin/berth-btrfs-maintenance balance /var/lib/docker 50 30\n",
    );
    expect(byName["berth-disk-check.service"]?.contents).toContain(
      "ExecStart=/usr/local/bin/berth-disk-check 15 /var/lib/docker /\n",
    );
  });

  it("journald drop-in caps the journal; refuses a bad size", () => {
    expect(renderJournaldDropin({ journalMaxUse: "2G" })).toContain("[Journal]\nSystemMaxUse=2G\n");
    expect(() => renderJournaldDropin({ journalMaxUse: "2 GB" })).toThrow(/journalMaxUse/);
  });
});

describe.skipIf(tools.skip)("systemd-analyze calendar accepts every timer's schedule", () => {
  it.each(Object.entries(UPKEEP_SCHEDULES))("%s: %s", (_name, expr) => {
    const r = spawnSync("systemd-analyze", ["calendar", expr], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Next elapse: /);
  });

  it("the monthly scrub falls on the first Sunday of a month", () => {
    const r = spawnSync("systemd-analyze", ["calendar", "--iterations=3", UPKEEP_SCHEDULES.btrfsScrub], {
      encoding: "utf8",
    });
    const dates = [...r.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): (\w{3}) \d{4}-\d\d-(\d\d) 06:00:00/g)];
    expect(dates.length).toBe(3);
    for (const [, day, dom] of dates) {
      expect(day).toBe("Sun");
      expect(Number(dom)).toBeLessThanOrEqual(7);
    }
  });
});
