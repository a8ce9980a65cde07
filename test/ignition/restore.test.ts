/**
 * Fresh production data in a host's Ignition: the script, each service's settings and masking
 * (0600, root-only: they may hold a Swift temporary URL or password) and its units; the shipped
 * staging stack's hosts carry them, a secret source makes the user data secret, and the real
 * Ignition writes them with those modes while `systemd-analyze verify` accepts the units.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { RestoreSettings } from "../../config/types.ts";
import { hostIgnitionHasSecrets, renderHostIgnition, type HostIgnitionInput } from "../../ignition/host.ts";
import type { IgnitionConfig } from "../../ignition/model.ts";
import { hostIgnitionBase } from "../../stack/host-ignition.ts";
import { runConfig, isSecret } from "../../plan/run.ts";
import { checkTools, toolsDescribe } from "../support/tools.ts";
import {
  IGNITION_BINARY,
  applyWithIgnition,
  fcosFull,
  fileText,
  makeScratchRoot,
  prepareVerifyRoot,
  verifyUnits,
} from "./fixtures.ts";

const TEMP_URL =
  "https://swift.example.com/v1/AUTH_p/backups/pg.dump?temp_url_sig=0123abcd&temp_url_expires=1900000000";
const settings = (s: Partial<RestoreSettings>): RestoreSettings => ({
  source: { kind: "url", url: "https://backups.example.com/r.rdb" },
  format: "redis-rdb",
  schedule: "*-*-* 03:30:00",
  timeoutMinutes: 60,
  ...s,
});
const host: HostIgnitionInput = {
  ...fcosFull,
  restore: [
    {
      service: "redis-cache-1",
      kind: "redis",
      dataDir: "/data",
      settings: settings({ masking: { path: "m.redis", text: "DEL session:1\n" } }),
    },
    {
      service: "postgres-main-1",
      kind: "postgres",
      dataDir: "/var/lib/postgresql/data",
      settings: settings({
        source: { kind: "swiftTempUrl", tempUrl: { kind: "plain", value: TEMP_URL } },
        format: "pg-custom",
        database: "app",
        schedule: "Mon..Fri 04:00",
      }),
    },
  ],
};
const UNITS = [
  "berth-restore-redis-cache-1.service",
  "berth-restore-redis-cache-1.timer",
  "berth-restore-postgres-main-1.service",
  "berth-restore-postgres-main-1.timer",
];

describe("renderHostIgnition with restore jobs", () => {
  it("adds the script, the settings and masking 0600, and the units; the timers are enabled", () => {
    const config = JSON.parse(renderHostIgnition(host)) as IgnitionConfig;
    const files = new Map((config.storage?.files ?? []).map((f) => [f.path, f]));
    expect(files.get("/usr/local/bin/berth-restore")?.mode).toBe(0o755);
    for (const p of [
      "/etc/berth/restore/redis-cache-1.conf",
      "/etc/berth/restore/redis-cache-1.mask",
      "/etc/berth/restore/postgres-main-1.conf",
    ])
      expect(files.get(p)?.mode, p).toBe(0o600);
    expect(fileText(config, "/etc/berth/restore/postgres-main-1.conf")).toContain(TEMP_URL);
    // The secret is in that file only: not in the units, not in the script.
    for (const u of config.systemd?.units ?? []) expect(u.contents ?? "").not.toContain("temp_url_sig");
    expect(fileText(config, "/usr/local/bin/berth-restore")).not.toContain("temp_url_sig=0");
    const units = new Map((config.systemd?.units ?? []).map((u) => [u.name, u]));
    expect(units.get("berth-restore-postgres-main-1.timer")?.enabled).toBe(true);
    expect(units.get("berth-restore-postgres-main-1.timer")?.contents).toContain(
      "OnCalendar=Mon..Fri 04:00\n",
    );
  });

  it("a temporary URL or Swift password makes the host's config secret; a plain URL does not", () => {
    const { dockerTls: _tls, logForward: _log, ...noOtherSecret } = host;
    void [_tls, _log];
    expect(hostIgnitionHasSecrets(noOtherSecret)).toBe(true);
    expect(hostIgnitionHasSecrets({ ...noOtherSecret, restore: host.restore?.slice(0, 1) })).toBe(false);
  });

  it("the shipped staging stack's hosts carry its two restore jobs; a temporary URL makes every host's user data a Pulumi secret", async () => {
    const c = loadStack(PROJECT_ROOT, "staging");
    for (const h of c.hosts.names)
      expect(hostIgnitionBase(c, h).restore?.map((j) => j.service)).toEqual([
        "redis-cache-1",
        "postgres-main-1",
      ]);
    const withSecret = structuredClone(c);
    const pg = withSecret.services.productionLike.find((s) => s.name === "postgres-main-1");
    if (!pg?.restore) throw new Error("staging has no postgres restore");
    pg.restore.source = { kind: "swiftTempUrl", tempUrl: { kind: "plain", value: TEMP_URL } };
    const run = await runConfig(withSecret);
    const servers = run.resources.filter((r) => r.type === "openstack:compute/instance:Instance");
    expect(servers.length).toBe(2);
    for (const s of servers) expect(isSecret(s.inputs.userData), String(s.name)).toBe(true);
  });
});

const tools = checkTools("restore jobs in Ignition", [
  { tool: "ignition-validate", debianPackage: "ignition" },
  { tool: IGNITION_BINARY, debianPackage: "ignition" },
  { tool: "setfiles", debianPackage: "policycoreutils" },
  { tool: "usermod", debianPackage: "passwd" },
  { tool: "systemd-analyze", debianPackage: "systemd" },
  { tool: "dockerd", debianPackage: "docker.io" },
]);

const cleanup: string[] = [];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

toolsDescribe(tools)("the real Ignition writes them, systemd-analyze verify accepts the units", () => {
  it("writes the secrets root-only 0600 (never world-readable); verify is clean", () => {
    const work = mkdtempSync(join(tmpdir(), "berth-ign-restore-"));
    cleanup.push(work);
    const configPath = join(work, "config.ign");
    writeFileSync(configPath, renderHostIgnition(host));
    const root = makeScratchRoot("berth-root-restore-");
    cleanup.push(root);
    const runs = applyWithIgnition(root, configPath, work);
    expect(runs.at(-1)?.status, runs.map((r) => r.output).join("\n")).toBe(0);
    for (const f of ["redis-cache-1.conf", "redis-cache-1.mask", "postgres-main-1.conf"]) {
      const st = statSync(join(root, "etc/berth/restore", f));
      expect(st.mode & 0o7777, f).toBe(0o600);
      expect(st.mode & 0o007, f).toBe(0);
      expect([st.uid, st.gid], f).toEqual([0, 0]);
    }
    expect(readFileSync(join(root, "etc/berth/restore/postgres-main-1.conf"), "utf8")).toContain(TEMP_URL);
    expect(statSync(join(root, "usr/local/bin/berth-restore")).mode & 0o7777).toBe(0o755);
    const preset = readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8");
    expect(preset).toContain("enable berth-restore-redis-cache-1.timer\n");
    prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
    const r = verifyUnits(root, UNITS, tools.paths["systemd-analyze"] ?? "systemd-analyze");
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("is a meaningful check: a bad calendar in a timer is refused", () => {
    const work = mkdtempSync(join(tmpdir(), "berth-ign-restore-"));
    cleanup.push(work);
    const configPath = join(work, "config.ign");
    const bad = structuredClone(host);
    const job = bad.restore?.[0];
    if (job) job.settings.schedule = "every night";
    writeFileSync(configPath, renderHostIgnition(bad));
    const root = makeScratchRoot("berth-root-restore-");
    cleanup.push(root);
    applyWithIgnition(root, configPath, work);
    prepareVerifyRoot(root, tools.paths.dockerd ?? "/usr/sbin/dockerd");
    const r = verifyUnits(
      root,
      ["berth-restore-redis-cache-1.timer"],
      tools.paths["systemd-analyze"] ?? "systemd-analyze",
    );
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/every night|OnCalendar|calendar/i);
  });
});
