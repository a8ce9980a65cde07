/**
 * renderers/restore.ts: the settings file (quoted for sh, secrets only there), the units, and the
 * script (shellcheck clean; the steps that keep the previous data).
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import type { RestoreSettings } from "../../config/types.ts";
import {
  RESTORE_OFFLINE_SECRET,
  keystoneAuthBody,
  renderRestoreConf,
  renderRestoreFiles,
  renderRestoreScript,
  renderRestoreUnits,
  shQuote,
  type RestoreJob,
} from "../../renderers/restore.ts";
import { requireTools } from "../support/tools.ts";

const shellcheck = requireTools("shellcheck", [{ tool: "shellcheck", debianPackage: "shellcheck" }]);

const base: RestoreSettings = {
  source: { kind: "url", url: "https://backups.example.com/redis/latest.rdb" },
  format: "redis-rdb",
  checksum: { url: "https://backups.example.com/redis/latest.rdb.sha256" },
  schedule: "*-*-* 03:30:00",
  timeoutMinutes: 45,
  masking: { path: "stacks/masking/r.redis", text: "DEL session:1\n" },
};
const redisJob: RestoreJob = { service: "redis-cache-1", kind: "redis", dataDir: "/data", settings: base };

/** The settings a shell gets from the file (evaluated by bash as the script sources it, printed back). */
function sourced(conf: string, names: string[]): Record<string, string> {
  const r = spawnSync(
    "bash",
    ["-c", `set -e; eval "$(cat)"; for n in ${names.join(" ")}; do printf '%s\\0' "\${!n}"; done`],
    {
      input: conf,
      encoding: "utf8",
    },
  );
  expect(r.status, r.stderr).toBe(0);
  const values = r.stdout.split("\0");
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""]));
}

describe("settings file", () => {
  it("holds every setting, quoted so that bash reads back exactly the values", () => {
    const conf = renderRestoreConf({
      service: "postgres-main-1",
      kind: "postgres",
      dataDir: "/var/lib/postgresql/data",
      settings: {
        ...base,
        format: "pg-custom",
        source: {
          kind: "swiftTempUrl",
          tempUrl: {
            kind: "plain",
            value: "https://s.example.com/v1/A/c/o?temp_url_sig=ab'c$(x)&temp_url_expires=9",
          },
        },
        checksum: { sha256: "a".repeat(64) },
        database: "app",
      },
    });
    const v = sourced(conf, [
      "SERVICE",
      "KIND",
      "FORMAT",
      "DATA_DIR",
      "SOURCE_KIND",
      "URL",
      "SOURCE_SHOWN",
      "CHECKSUM_SHA256",
      "CHECKSUM_URL",
      "DATABASE",
      "MASKING",
      "TIMEOUT_SECONDS",
    ]);
    expect(v).toEqual({
      SERVICE: "postgres-main-1",
      KIND: "postgres",
      FORMAT: "pg-custom",
      DATA_DIR: "/var/lib/postgresql/data",
      SOURCE_KIND: "swiftTempUrl",
      URL: "https://s.example.com/v1/A/c/o?temp_url_sig=ab'c$(x)&temp_url_expires=9",
      SOURCE_SHOWN: "swift temporary URL https://s.example.com/v1/A/c/o?temp_url_sig=[secret]",
      CHECKSUM_SHA256: "a".repeat(64),
      CHECKSUM_URL: "",
      DATABASE: "app",
      MASKING: "postgres-main-1.mask",
      TIMEOUT_SECONDS: "2700",
    });
  });

  it("an encrypted secret (offline render) becomes a named placeholder, never the ciphertext", () => {
    const conf = renderRestoreConf({
      ...redisJob,
      settings: {
        ...base,
        source: { kind: "swiftTempUrl", tempUrl: { kind: "encrypted", ciphertext: "v1:CIPHER" } },
      },
    });
    expect(conf).not.toContain("CIPHER");
    expect(sourced(conf, ["URL"]).URL).toBe(RESTORE_OFFLINE_SECRET);
  });

  it("Swift credentials: the Keystone v3 password request, and the object URL encoded", () => {
    const src = {
      kind: "swift" as const,
      authUrl: "https://keystone.example.com:5000/v3/",
      storageUrl: "https://swift.example.com/v1/AUTH_p",
      container: "back ups",
      object: "pg/latest dump",
      username: "u",
      userDomain: "Default",
      projectName: "prod",
      projectDomain: "Default",
      password: { kind: "plain" as const, value: 'p"w\\' },
    };
    const v = sourced(renderRestoreConf({ ...redisJob, settings: { ...base, source: src } }), [
      "SWIFT_AUTH_URL",
      "SWIFT_OBJECT_URL",
      "SWIFT_AUTH_BODY",
    ]);
    expect(v.SWIFT_AUTH_URL).toBe("https://keystone.example.com:5000/v3/auth/tokens");
    expect(v.SWIFT_OBJECT_URL).toBe("https://swift.example.com/v1/AUTH_p/back%20ups/pg/latest%20dump");
    expect(JSON.parse(v.SWIFT_AUTH_BODY ?? "")).toEqual(JSON.parse(keystoneAuthBody(src)));
    expect(JSON.parse(v.SWIFT_AUTH_BODY ?? "").auth.identity.password.user.password).toBe('p"w\\');
  });

  it("settings and masking are written 0600 (they may hold secrets and production-data rules)", () => {
    const files = renderRestoreFiles(redisJob);
    expect(files.map((f) => [f.path, f.mode])).toEqual([
      ["/etc/berth/restore/redis-cache-1.conf", 0o600],
      ["/etc/berth/restore/redis-cache-1.mask", 0o600],
    ]);
    expect(files[1]?.contents).toBe("DEL session:1\n");
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe("units", () => {
  it("a oneshot service with a timeout above the restore's, and a persistent timer on the schedule", () => {
    const [service, timer] = renderRestoreUnits("/usr/local/bin", redisJob);
    expect(service?.name).toBe("berth-restore-redis-cache-1.service");
    expect(service?.contents).toContain("ExecStart=/usr/local/bin/berth-restore redis-cache-1\n");
    expect(service?.contents).toContain("Type=oneshot\n");
    expect(service?.contents).toContain("TimeoutStartSec=55min\n");
    expect(service?.contents).toContain("UMask=0077\n");
    expect(timer).toMatchObject({ name: "berth-restore-redis-cache-1.timer", enabled: true });
    expect(timer?.contents).toContain("OnCalendar=*-*-* 03:30:00\nPersistent=true\n");
  });
});

describe("script", () => {
  const s = renderRestoreScript();
  it.skipIf(shellcheck.skip)("shellcheck finds nothing", () => {
    const r = spawnSync("shellcheck", ["-"], { input: s, encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  it("keeps secrets off curl's command line and fetches with TLS verified, https only", () => {
    expect(s).toContain("curl --config - --fail");
    expect(s).toContain("--proto =https --proto-redir =https");
    expect(s).not.toMatch(/--insecure|\s-k\s/);
    expect(s).not.toMatch(/\bcurl\s[^\n]*\$(URL|SWIFT_OBJECT_URL|token)/);
  });

  it("never touches the service before the new data has loaded and been masked", () => {
    const stop = s.indexOf('docker stop -t 60 "$SERVICE"');
    expect(s.indexOf("redis could not load the dump")).toBeLessThan(stop);
    expect(s.indexOf("masking failed")).toBeLessThan(stop);
    expect(s.indexOf("checksum mismatch")).toBeLessThan(s.indexOf("restore_redis() {"));
    // postgres: the fresh database is masked before the swap.
    const pg = s.slice(s.indexOf("restore_postgres() {"));
    expect(pg.indexOf('pg -d "$fresh" --single-transaction <"$MASKING"')).toBeLessThan(
      pg.indexOf("RENAME TO"),
    );
  });

  it("is valid bash", () => {
    const r = spawnSync("bash", ["-n"], { input: s, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
