/**
 * `berth:services.productionLike[i].restore`: the checks (one error naming every bad field with
 * its path and the fix), what a valid setting resolves to, and how a source is shown.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { afterAll, describe, expect, it } from "vitest";

import { loadStack } from "../../config/index.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { calendarProblem, describeSource } from "../../config/validate-restore.ts";
import { issuesOf } from "../support/cli.ts";
import { requireTools } from "../support/tools.ts";

type Doc = { config: Record<string, Record<string, unknown>> };
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A project root with a copy of the shipped staging stack (and its masking files), edited by `edit`. */
function rootWith(
  edit: (services: { name: string; kind: string; restore?: Record<string, unknown> }[]) => void,
) {
  const root = mkdtempSync(join(tmpdir(), "berth-restore-config-"));
  roots.push(root);
  mkdirSync(join(root, "stacks", "masking"), { recursive: true });
  mkdirSync(join(root, "snippets"));
  writeFileSync(
    join(root, "snippets", "ci-inotify.json"),
    readFileSync(join(PROJECT_ROOT, "snippets", "ci-inotify.json")),
  );
  for (const f of ["staging-redis-cache-1.redis", "staging-postgres-main-1.sql"])
    writeFileSync(
      join(root, "stacks", "masking", f),
      readFileSync(join(PROJECT_ROOT, "stacks", "masking", f)),
    );
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", "Pulumi.staging.yaml"), "utf8")) as Doc;
  const services = (doc.config["berth:services"] as { productionLike: never[] }).productionLike;
  edit(services);
  writeFileSync(join(root, "stacks", "Pulumi.staging.yaml"), stringify(doc));
  return root;
}

const P = (i: number) => `berth:services.productionLike[${String(i)}].restore`;

describe("the shipped staging stack", () => {
  it("restores redis-cache-1 and postgres-main-1 from sample https sources, masked", () => {
    const c = loadStack(PROJECT_ROOT, "staging");
    const byName = new Map(c.services.productionLike.map((s) => [s.name, s.restore]));
    expect(byName.get("redis-cache-1")).toMatchObject({
      source: { kind: "url", url: "https://backups.ci.example.com/production/redis-cache-1/latest.rdb" },
      format: "redis-rdb",
      schedule: "*-*-* 03:30:00",
      timeoutMinutes: 60,
      masking: { path: "stacks/masking/staging-redis-cache-1.redis" },
    });
    expect(byName.get("postgres-main-1")).toMatchObject({ format: "pg-custom", database: "app" });
    expect(byName.get("postgres-main-1")?.masking?.text).toContain("UPDATE users SET email");
    expect(byName.get("mongodb-cluster-a-node-1")).toBeUndefined();
  });
});

describe("validation (one error naming every bad field)", () => {
  it("reports every bad field of several services together, each with its path and the fix", () => {
    const root = rootWith((s) => {
      const [m1, m2, redis, pg] = s as unknown as [
        { restore?: Record<string, unknown> },
        { restore?: Record<string, unknown> },
        { restore?: Record<string, unknown> },
        { restore?: Record<string, unknown> },
      ];
      m1.restore = {
        source: { url: "http://backups.example.com/a" },
        format: "pg-custom",
        schedule: "every night",
      };
      m2.restore = {
        source: { url: "https://backups.example.com/a", swiftTempUrl: "https://swift.example.com/v1/x" },
        format: "mongodump-archive",
        schedule: "*-*-* 25:00",
        database: "app",
        masking: "stacks/masking/missing.js",
      };
      redis.restore = {
        source: { url: "https://user:pw@backups.example.com/r.rdb" },
        format: "redis-rdb",
        checksum: { url: "https://x.example.com/s", sha256: "a".repeat(64) },
        schedule: "daily",
        masking: "stacks/masking/staging-postgres-main-1.sql",
      };
      pg.restore = { source: {}, format: "sql", schedule: "Mon..Fri 02:30", masking: "../outside.sql" };
    });
    const issues = issuesOf(() => loadStack(root, "staging"));
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    expect([...byPath.keys()].sort()).toEqual(
      [
        `${P(0)}.source.url`,
        `${P(0)}.format`,
        `${P(0)}.schedule`,
        `${P(1)}.source`,
        `${P(1)}.source.swiftTempUrl`,
        `${P(1)}.schedule`,
        `${P(1)}.database`,
        `${P(1)}.masking`,
        `${P(2)}.source.url`,
        `${P(2)}.checksum`,
        `${P(2)}.masking`,
        `${P(3)}.source`,
        `${P(3)}.database`,
        `${P(3)}.masking`,
      ].sort(),
    );
    expect(byPath.get(`${P(0)}.source.url`)).toMatch(/must be an https:\/\/ URL/);
    expect(byPath.get(`${P(0)}.format`)).toMatch(
      /pg-custom dumps restore into postgres, not into this mongodb service; use "mongodump-archive"/,
    );
    expect(byPath.get(`${P(0)}.schedule`)).toMatch(/is not a systemd calendar expression/);
    expect(byPath.get(`${P(1)}.source`)).toMatch(/gives url and swiftTempUrl; keep exactly one/);
    expect(byPath.get(`${P(1)}.source.swiftTempUrl`)).toMatch(/not a Swift temporary URL/);
    expect(byPath.get(`${P(1)}.schedule`)).toMatch(/hour over 23/);
    expect(byPath.get(`${P(1)}.database`)).toMatch(/only postgres restores into a named database/);
    expect(byPath.get(`${P(1)}.masking`)).toMatch(/no such file stacks\/masking\/missing\.js/);
    expect(byPath.get(`${P(2)}.source.url`)).toMatch(/carries a user name or password/);
    expect(byPath.get(`${P(2)}.checksum`)).toMatch(/exactly one of url .* or sha256/);
    expect(byPath.get(`${P(2)}.masking`)).toMatch(/redis-cli commands.*name the file \*\.redis/);
    expect(byPath.get(`${P(3)}.source`)).toMatch(/names no source/);
    expect(byPath.get(`${P(3)}.database`)).toMatch(/missing: name the database/);
    expect(byPath.get(`${P(3)}.masking`)).toMatch(/leads outside the project root/);
  });

  it("refuses a restore on a kind without data, an unknown key and a temporary URL given as a plain url", () => {
    const root = rootWith((s) => {
      s.push({ name: "cache-1", kind: "memcached", address: "172.30.0.41" } as never);
      (s[4] as { restore?: unknown }).restore = {
        source: { url: "https://b.example.com/x" },
        format: "sql",
        schedule: "daily",
      };
      (s[2] as { restore: Record<string, unknown> }).restore.shedule = "daily";
      (s[3] as { restore: Record<string, unknown> }).restore.source = {
        url: "https://swift.example.com/v1/AUTH_x/c/o?temp_url_sig=abc&temp_url_expires=1",
      };
    });
    const issues = issuesOf(() => loadStack(root, "staging"));
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    expect(byPath.get(P(4))).toMatch(/a memcached service has no data to restore/);
    expect(byPath.get(`${P(4)}.format`)).toMatch(
      /sql dumps restore into postgres, not into this memcached service; remove restore/,
    );
    expect(byPath.get(`${P(2)}.shedule`)).toMatch(/unknown key; did you mean "schedule"/);
    expect(byPath.get(`${P(3)}.source.url`)).toMatch(/move it to source.swiftTempUrl and set it as a secret/);
  });

  it("resolves Swift credentials with their defaults; the password stays a secret value", () => {
    const root = rootWith((s) => {
      (s[3] as { restore: Record<string, unknown> }).restore.source = {
        swift: {
          authUrl: "https://keystone.example.com:5000/v3",
          storageUrl: "https://swift.example.com/v1/AUTH_prod/",
          container: "backups",
          object: "postgres/latest dump",
          username: "ci-restore",
          projectName: "prod",
          password: { secure: "v1:abcdef" },
        },
      };
    });
    const r = loadStack(root, "staging").services.productionLike[3]?.restore;
    expect(r?.source).toEqual({
      kind: "swift",
      authUrl: "https://keystone.example.com:5000/v3",
      storageUrl: "https://swift.example.com/v1/AUTH_prod",
      container: "backups",
      object: "postgres/latest dump",
      username: "ci-restore",
      userDomain: "Default",
      projectName: "prod",
      projectDomain: "Default",
      password: { kind: "encrypted", ciphertext: "v1:abcdef" },
    });
    expect(describeSource(r!.source)).toBe(
      "swift https://swift.example.com/v1/AUTH_prod/backups/postgres/latest dump (user ci-restore, password [secret], via https://keystone.example.com:5000/v3)",
    );
    expect(
      describeSource({
        kind: "swiftTempUrl",
        tempUrl: {
          kind: "plain",
          value: "https://s.example.com/v1/A/c/o?temp_url_sig=abc&temp_url_expires=9",
        },
      }),
    ).toBe("swift temporary URL https://s.example.com/v1/A/c/o?temp_url_sig=[secret]");
    expect(describeSource({ kind: "swiftTempUrl", tempUrl: { kind: "encrypted", ciphertext: "v1:x" } })).toBe(
      "swift temporary URL [secret]",
    );
  });
});

const ACCEPTED = [
  "daily",
  "weekly",
  "hourly",
  "*-*-* 03:00:00",
  "*-*-* 03:30",
  "Mon..Fri 02:30",
  "Sat,Sun 04:00:00",
  "Mon,Wed..Fri *-*-* 01:15:00",
  "*-*-01 05:00",
  "2026-*-* 00:00:00",
  "*-*-* 0/6:00:00",
  "*-*-* 03,15:00",
  "*-*-* 1..5:00",
];
const REFUSED = ["every night", "*-*-* 25:00", "*-*-* 03:61", "Moonday 03:00", "", "03:00 daily", "*-*-* 3"];

describe("schedules", () => {
  it("accepts the documented forms and refuses others", () => {
    for (const e of ACCEPTED) expect(calendarProblem(e), e).toBeUndefined();
    for (const e of REFUSED) expect(calendarProblem(e), e).toBeDefined();
  });

  const sd = requireTools("systemd-analyze calendar", [
    { tool: "systemd-analyze", debianPackage: "systemd" },
  ]);
  it.skipIf(sd.skip)(
    "every form Berth accepts is accepted by systemd-analyze calendar; those it refuses, systemd refuses too",
    () => {
      for (const e of ACCEPTED) {
        const r = spawnSync("systemd-analyze", ["calendar", e], { encoding: "utf8" });
        expect(r.status, `${e}: ${r.stderr}`).toBe(0);
      }
      for (const e of REFUSED.filter((x) => x !== "")) {
        const r = spawnSync("systemd-analyze", ["calendar", e], { encoding: "utf8" });
        expect(r.status, `${e}: systemd accepts it`).not.toBe(0);
      }
    },
  );
});
