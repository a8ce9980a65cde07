/**
 * `berth:services.productionLike[i].restore`: where a production-like service's fresh data comes
 * from (issue #17, item 1). The schema (config/schema.ts) checks shapes; this file checks what a
 * schema cannot word clearly, reports every problem with its path and the fix, and resolves the
 * settings (the masking file's text included) for renderers/restore.ts.
 *
 * Checked here: exactly one source (`url`, `swiftTempUrl` or `swift`), every URL is https, the
 * dump's format suits the service's kind, at most one checksum form, the schedule is a systemd
 * calendar expression of the forms below, `database` is given for postgres (only), and the masking
 * file is a file inside the project with the extension the service's kind runs.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import type { ConfigIssue } from "./errors.ts";
import { fragmentPathProblem } from "./validate-input.ts";
import { isObj, type Obj } from "./raw.ts";
import type { NamedService, SecretValue, ServiceKind } from "./types.ts";
import {
  RESTORE_FORMATS,
  describeSource,
  type RestoreFormat,
  type RestoreSettings,
  type RestoreSource,
} from "../renderers/restore.ts";

export { RESTORE_FORMATS, describeSource };

/** The masking file's extension per kind, and what runs it. */
export const MASKING_EXTENSIONS: Partial<Record<ServiceKind, { ext: string; runner: string }>> = {
  redis: { ext: ".redis", runner: "redis-cli commands, one per line" },
  postgres: { ext: ".sql", runner: "SQL run by psql with ON_ERROR_STOP in one transaction" },
  mongodb: { ext: ".js", runner: "a mongosh script" },
};

/** Largest masking file taken into a host's Ignition (user data is limited to 64 KiB). */
export const MAX_MASKING_BYTES = 16 * 1024;

export const RESTORE_DEFAULTS = { timeoutMinutes: 60 } as const;

const SHORTHANDS = [
  "minutely",
  "hourly",
  "daily",
  "weekly",
  "monthly",
  "yearly",
  "annually",
  "quarterly",
  "semiannually",
];
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const DAYS = `${DAY}(?:\\.\\.${DAY})?(?:,${DAY}(?:\\.\\.${DAY})?)*`;
/** One calendar field: `*`, numbers, lists, ranges and repetitions (`0/15`, `1..5`, `1,15`). */
const field = (digits: string) => {
  const one = `(?:\\*|${digits}(?:\\.\\.${digits})?)(?:/\\d{1,4})?`;
  return `${one}(?:,${one})*`;
};
const CALENDAR = new RegExp(
  `^(?:${DAYS} )?` +
    `(?:(?:${field("\\d{4}")}-)?${field("\\d{1,2}")}-${field("\\d{1,2}")} )?` +
    `${field("\\d{1,2}")}:${field("\\d{1,2}")}(?::${field("\\d{1,2}")})?$`,
);

/**
 * Whether `expr` is a systemd calendar expression of the forms Berth accepts for OnCalendar=: a
 * shorthand (`daily`, `weekly`, …) or `[DAYS ][[YYYY-]MM-DD ]HH:MM[:SS]`, each field `*`, a number,
 * a list, a range (`..`) or a repetition (`/n`), with hours < 24 and minutes/seconds < 60. (systemd
 * knows more forms; a unit test checks every accepted example with `systemd-analyze calendar`.)
 */
export function calendarProblem(expr: string): string | undefined {
  const form =
    'a systemd calendar expression such as "*-*-* 03:00:00", "Mon..Fri 02:30" or "daily" (local time of the host)';
  const e = expr.trim();
  if (SHORTHANDS.includes(e)) return undefined;
  if (!CALENDAR.test(e)) return `${JSON.stringify(expr)} is not ${form}`;
  const time = e.split(" ").at(-1) ?? "";
  const [h, m, s] = time.split(":");
  const tooBig = (part: string | undefined, max: number) =>
    (part ?? "")
      .split(/[,.]+|\//)
      .filter((x) => /^\d+$/.test(x))
      .some((x, i, all) => Number(x) > max && !(part ?? "").includes(`/${all[i] ?? ""}`));
  if (tooBig(h, 23) || tooBig(m, 59) || tooBig(s, 59))
    return `${JSON.stringify(expr)} has an hour over 23 or a minute/second over 59; give ${form}`;
  return undefined;
}

/** `https://host[:port]/…` with a host; no user info (credentials belong in a secret, not a URL). */
export function httpsUrlProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return "is not a URL; give an absolute https:// URL";
  }
  if (u.protocol !== "https:")
    return `must be an https:// URL (the dump is fetched with TLS verified), got ${u.protocol}//`;
  if (u.hostname === "") return "has no host";
  if (u.username !== "" || u.password !== "")
    return "carries a user name or password; remove them (use berth:…restore.source.swift with a secret password instead)";
  return undefined;
}

const secretValue = (v: unknown): SecretValue =>
  typeof v === "string"
    ? { kind: "plain", value: v }
    : { kind: "encrypted", ciphertext: String(isObj(v) ? v.secure : "") };

/** Problems of every `restore` block of `berth:services.productionLike` (empty when none). */
export function restoreIssues(raw: Obj, root: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const services = isObj(raw.services) ? raw.services : {};
  const list = Array.isArray(services.productionLike) ? (services.productionLike as unknown[]) : [];
  list.forEach((svc, i) => {
    if (!isObj(svc) || !isObj(svc.restore)) return;
    const P = `berth:services.productionLike[${i}].restore`;
    const r = svc.restore;
    const kind = typeof svc.kind === "string" ? svc.kind : undefined;
    const add = (path: string, message: string) => issues.push({ path: `${P}${path}`, message });

    if (kind !== undefined && !Object.values(RESTORE_FORMATS).includes(kind as never))
      add(
        "",
        `a ${kind} service has no data to restore; remove restore (only redis, mongodb and postgres services take one)`,
      );

    // --- source --------------------------------------------------------------------------------
    const source = isObj(r.source) ? r.source : undefined;
    if (source) {
      const given = ["url", "swiftTempUrl", "swift"].filter((k) => source[k] !== undefined);
      if (given.length !== 1)
        add(
          ".source",
          given.length === 0
            ? "names no source; give one of url (an https URL), swiftTempUrl (a Swift temporary URL, a secret) or swift (Swift credentials)"
            : `gives ${given.join(" and ")}; keep exactly one`,
        );
      if (typeof source.url === "string") {
        const p = httpsUrlProblem(source.url);
        if (p) add(".source.url", p);
        else if (/[?&]temp_url_sig=/.test(source.url))
          add(
            ".source.url",
            "is a Swift temporary URL, which grants access to whoever holds it: move it to source.swiftTempUrl and set it as a secret (`pulumi config set --secret --path ...`)",
          );
      }
      if (typeof source.swiftTempUrl === "string") {
        const p = httpsUrlProblem(source.swiftTempUrl);
        if (p) add(".source.swiftTempUrl", p);
        else if (
          !/[?&]temp_url_sig=[0-9a-f]+/.test(source.swiftTempUrl) ||
          !/[?&]temp_url_expires=/.test(source.swiftTempUrl)
        )
          add(
            ".source.swiftTempUrl",
            "is not a Swift temporary URL (no temp_url_sig and temp_url_expires); generate one with `swift tempurl GET <seconds> <path> <key>` and set it as a secret",
          );
      }
      const swift = isObj(source.swift) ? source.swift : undefined;
      if (swift) {
        for (const key of ["authUrl", "storageUrl"] as const)
          if (typeof swift[key] === "string") {
            const p = httpsUrlProblem(swift[key]);
            if (p) add(`.source.swift.${key}`, p);
          }
        if (typeof swift.authUrl === "string" && !/\/v3\/?$/.test(swift.authUrl))
          add(
            ".source.swift.authUrl",
            "must be Keystone's v3 endpoint, ending in /v3 (such as https://keystone.example.com:5000/v3)",
          );
      }
    }

    // --- format --------------------------------------------------------------------------------
    if (typeof r.format === "string" && r.format in RESTORE_FORMATS && kind !== undefined) {
      const want = RESTORE_FORMATS[r.format as RestoreFormat];
      if (want !== kind) {
        const fit = Object.entries(RESTORE_FORMATS)
          .filter(([, k]) => k === kind)
          .map(([f]) => `"${f}"`);
        add(
          ".format",
          `${r.format} dumps restore into ${want}, not into this ${kind} service; ${fit.length > 0 ? `use ${fit.join(" or ")}` : "remove restore"}`,
        );
      }
    }

    // --- checksum ------------------------------------------------------------------------------
    if (isObj(r.checksum)) {
      const c = r.checksum;
      if ((c.url === undefined) === (c.sha256 === undefined))
        add(".checksum", "give exactly one of url (an https URL of a sha256 file) or sha256 (64 hex digits)");
      if (typeof c.url === "string") {
        const p = httpsUrlProblem(c.url);
        if (p) add(".checksum.url", p);
      }
    }

    // --- schedule ------------------------------------------------------------------------------
    if (typeof r.schedule === "string") {
      const p = calendarProblem(r.schedule);
      if (p) add(".schedule", p);
    }

    // --- database (postgres) -------------------------------------------------------------------
    if (kind === "postgres" && r.database === undefined)
      add(
        ".database",
        "missing: name the database the dump restores into (it is restored into a fresh database, masked, then swapped in under this name)",
      );
    if (kind !== undefined && kind !== "postgres" && r.database !== undefined)
      add(".database", `only postgres restores into a named database; remove it from this ${kind} service`);
    if (r.database === "postgres" || r.database === "template0" || r.database === "template1")
      add(
        ".database",
        `${String(r.database)} is a system database; restore into a database of its own, such as "app"`,
      );

    // --- masking -------------------------------------------------------------------------------
    if (typeof r.masking === "string" && r.masking !== "") {
      const m = MASKING_EXTENSIONS[kind as ServiceKind];
      const problem = fragmentPathProblem(root, r.masking);
      const file = resolvePath(root, r.masking);
      if (problem)
        add(
          ".masking",
          problem.replace("such as snippets/<name>.json", "such as masking/<service>" + (m?.ext ?? "")),
        );
      else if (!existsSync(file) || !statSync(file).isFile())
        add(".masking", `no such file ${r.masking} (paths are relative to the project root)`);
      else if (statSync(file).size > MAX_MASKING_BYTES)
        add(
          ".masking",
          `${r.masking} is over ${MAX_MASKING_BYTES} bytes; it goes into the host's user data (64 KiB): shorten it`,
        );
      if (m && !r.masking.endsWith(m.ext))
        add(".masking", `a ${kind ?? ""} service's masking step is ${m.runner}: name the file *${m.ext}`);
    }
  });
  return issues;
}

/** The resolved restore settings of a validated production-like entry (undefined: none). */
export function resolveRestore(svc: Obj, root: string): RestoreSettings | undefined {
  const r = isObj(svc.restore) ? svc.restore : undefined;
  if (!r) return undefined;
  const s = r.source as Obj;
  let source: RestoreSource;
  if (typeof s.url === "string") source = { kind: "url", url: s.url };
  else if (s.swiftTempUrl !== undefined)
    source = { kind: "swiftTempUrl", tempUrl: secretValue(s.swiftTempUrl) };
  else {
    const w = s.swift as Obj;
    source = {
      kind: "swift",
      authUrl: String(w.authUrl),
      storageUrl: String(w.storageUrl).replace(/\/$/, ""),
      container: String(w.container),
      object: String(w.object),
      username: String(w.username),
      userDomain: String(w.userDomain),
      projectName: String(w.projectName),
      projectDomain: String(w.projectDomain),
      password: secretValue(w.password),
    };
  }
  const c = isObj(r.checksum) ? r.checksum : undefined;
  return {
    source,
    format: r.format as RestoreFormat,
    ...(c && typeof c.url === "string" ? { checksum: { url: c.url } } : {}),
    ...(c && typeof c.sha256 === "string" ? { checksum: { sha256: c.sha256.toLowerCase() } } : {}),
    schedule: String(r.schedule),
    timeoutMinutes: typeof r.timeoutMinutes === "number" ? r.timeoutMinutes : RESTORE_DEFAULTS.timeoutMinutes,
    ...(typeof r.database === "string" ? { database: r.database } : {}),
    ...(typeof r.masking === "string"
      ? { masking: { path: r.masking, text: readFileSync(resolvePath(root, r.masking), "utf8") } }
      : {}),
  };
}

/** The production-like services with their restore settings resolved. */
export function resolveProductionLike(list: Obj[], root: string): NamedService[] {
  return list.map((svc) => {
    const restore = resolveRestore(svc, root);
    const { restore: _raw, ...rest } = svc as Obj & { restore?: unknown };
    void _raw;
    return { ...(rest as unknown as NamedService), ...(restore ? { restore } : {}) };
  });
}

/** Whether a restore setting carries a secret (the host's user data then becomes a Pulumi secret). */
export function restoreHasSecret(r: RestoreSettings): boolean {
  return r.source.kind !== "url";
}
