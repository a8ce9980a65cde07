/**
 * Registry upkeep on the registry host: a tag retention policy and a scheduled garbage collection in
 * a window during which the registry refuses writes. Pure: same input, same bytes.
 *
 * How it works (`berth-registry-gc`, run by `berth-registry-gc.timer`):
 * 1. Maintenance on: the script writes the refusal (a registry error document naming the end of the
 *    window) into the nginx container's maintenance directory, a tmpfs. While that file exists,
 *    nginx answers every write to `/v2/` (POST, PUT, PATCH, DELETE) with 405 and the file as the
 *    body; GET and HEAD pass, so pulls keep working. nginx is the only way to the registry (it sits
 *    on an internal network), so to every client the registry is read-only.
 * 2. After a short grace (writes already under way finish), retention: per repository the last
 *    `keepTags` tags by push time, plus every tag matching a protected pattern, are kept. Every
 *    other tag's manifest is deleted through the registry API (`DELETE /v2/<repo>/manifests/<digest>`,
 *    straight to the registry, not through nginx), unless a kept tag points at the same digest.
 * 3. `registry garbage-collect` (without `--delete-untagged`) removes the blobs no manifest
 *    references any more.
 * 4. Maintenance off: the refusal is removed (also by `ExecStopPost=`, whatever happened).
 *
 * The registry runs without the in-memory blob descriptor cache (renderers/registry.ts
 * `blobDescriptorCache: "off"`): a long-running registry with that cache would keep saying that a
 * blob the garbage collection deleted exists, so a later push would skip uploading it and the
 * image would be broken. Without the cache every blob lookup is a stat of the local volume.
 */
import { RenderError } from "./common.ts";

const R = "renderRegistryGcConf";

/** Settings of `berth:registry.upkeep`. */
export interface RegistryUpkeepSettings {
  /** Tags kept per repository, the most recently pushed first. At least 1. */
  keepTags: number;
  /** Tags matching any of these POSIX extended regular expressions are always kept. */
  protectedTags: string[];
  /** When the window starts: a systemd calendar expression, weekly (`Sun *-*-* 04:00:00`). */
  gcSchedule: string;
  /** How long the window lasts at most; the service is stopped (and writes allowed) after it. */
  gcWindowMinutes: number;
}

/** Release tags (`1.2`, `v1.2.3`) and `latest`. */
export const DEFAULT_PROTECTED_TAGS = ["^v?[0-9]+\\.[0-9]+(\\.[0-9]+)?$", "^latest$"];

export const REGISTRY_UPKEEP_DEFAULTS: RegistryUpkeepSettings = {
  keepTags: 10,
  protectedTags: DEFAULT_PROTECTED_TAGS,
  gcSchedule: "Sun *-*-* 04:00:00",
  gcWindowMinutes: 60,
};

export const REGISTRY_GC_SCRIPT = "berth-registry-gc";
export const REGISTRY_GC_UNIT = "berth-registry-gc";
/** The script's settings file on the registry host. */
export const REGISTRY_GC_CONF_PATH = "/etc/berth/registry-gc.conf";
/** The nginx container's maintenance directory (a tmpfs): while the refusal is there, writes get 405. */
export const NGINX_MAINTENANCE_DIR = "/etc/nginx/berth/maintenance";
/** The refusal's file name in {@link NGINX_MAINTENANCE_DIR}: a registry error document (JSON). */
export const MAINTENANCE_REFUSAL_FILE = "refusal.json";
/** Seconds between maintenance on and the first delete: writes already under way finish. */
export const MAINTENANCE_GRACE_SECONDS = 15;

const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;

/** A GC schedule parsed into the week: start minutes after Monday 00:00 (sorted). */
export interface WeeklySchedule {
  starts: number[];
}

/**
 * Parses the weekly forms of a systemd calendar expression Berth accepts for the GC window:
 * `[DAYS ][*-*-* ]HH:MM[:SS]`, DAYS a comma list of `Mon`..`Sun` and ranges (`Mon..Fri`), or
 * `daily`/`weekly`. Returns an error text for anything else (systemd knows more forms, but the
 * window must be checked against the update windows, which are weekly).
 */
export function parseGcSchedule(expr: string): WeeklySchedule | string {
  const form = 'a weekly systemd calendar time such as "Sun *-*-* 04:00:00" or "Sat,Sun 03:30"';
  const e = expr.trim();
  if (e === "daily") return parseGcSchedule("*-*-* 00:00:00");
  if (e === "weekly") return parseGcSchedule("Mon *-*-* 00:00:00");
  const m = /^(?:([A-Za-z.,]+) )?(?:\*-\*-\* )?(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(e);
  if (!m) return `"${expr}" is not ${form}`;
  const hour = Number(m[2]);
  const minute = Number(m[3]);
  if (hour > 23 || minute > 59 || (m[4] !== undefined && Number(m[4]) > 59))
    return `"${expr}" has no valid time of day; use ${form}`;
  if (m[4] !== undefined && Number(m[4]) !== 0) return `"${expr}": start on a whole minute`;
  const days = new Set<number>();
  if (m[1] === undefined) DAY_NAMES.forEach((_, i) => days.add(i));
  else {
    for (const part of m[1].split(",")) {
      const [a, b, extra] = part.split("..");
      const from = DAY_NAMES.indexOf((a ?? "") as (typeof DAY_NAMES)[number]);
      const to = b === undefined ? from : DAY_NAMES.indexOf(b as (typeof DAY_NAMES)[number]);
      if (from < 0 || to < 0 || to < from || extra !== undefined)
        return `"${expr}": "${part}" is not a day (Mon..Sun) or a range of days such as Mon..Fri; use ${form}`;
      for (let d = from; d <= to; d++) days.add(d);
    }
  }
  return { starts: [...days].sort((x, y) => x - y).map((d) => d * 1440 + hour * 60 + minute) };
}

/**
 * Why `pattern` is not a POSIX extended regular expression the script can use (bash `[[ =~ ]]`),
 * or undefined when it is fine. Checked: it compiles (as a JavaScript regular expression, whose
 * syntax is a superset for what is allowed), and it uses nothing ERE lacks: no `\d`/`\w`/`\s`/`\b`
 * or other backslash-letter or backreference escapes, no `(?` groups, no lazy quantifiers.
 */
export function protectedPatternIssue(pattern: string): string | undefined {
  if (pattern === "") return "is empty; remove it (an empty pattern would protect every tag)";
  try {
    new RegExp(pattern);
  } catch (e) {
    return `is not a valid regular expression (${(e as Error).message})`;
  }
  const esc = /\\([A-Za-z0-9])/.exec(pattern);
  if (esc)
    return `uses \\${esc[1] ?? ""}, which POSIX extended regular expressions (bash =~) do not have; write [0-9] for \\d, [A-Za-z0-9_] for \\w`;
  if (pattern.includes("(?")) return "uses a (?...) group, which POSIX extended regular expressions lack";
  if (/[*+?}]\?/.test(pattern))
    return "uses a lazy quantifier (*?, +?), which POSIX extended regular expressions lack";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return "contains control characters";
  return undefined;
}

/** `/etc/berth/registry-gc.conf`: one `key=value` a line; `protect=` once per pattern. */
export function renderRegistryGcConf(s: RegistryUpkeepSettings): string {
  if (!Number.isInteger(s.keepTags) || s.keepTags < 1)
    throw new RenderError(R, "keepTags", `must be an integer ≥ 1, got ${String(s.keepTags)}`);
  if (!Number.isInteger(s.gcWindowMinutes) || s.gcWindowMinutes < 1)
    throw new RenderError(R, "gcWindowMinutes", `must be an integer ≥ 1, got ${String(s.gcWindowMinutes)}`);
  s.protectedTags.forEach((p, i) => {
    const issue = protectedPatternIssue(p);
    if (issue !== undefined) throw new RenderError(R, `protectedTags[${i}]`, `${JSON.stringify(p)} ${issue}`);
  });
  return [
    "# Berth: registry retention and garbage collection (berth-registry-gc). Rendered, first boot.",
    "# keep_tags: tags kept per repository, most recently pushed first",
    `keep_tags=${s.keepTags}`,
    "# window_minutes: how long writes are refused at most",
    `window_minutes=${s.gcWindowMinutes}`,
    "# protect: tags matching any of these POSIX extended regular expressions are always kept",
    ...s.protectedTags.map((p) => `protect=${p}`),
    "",
  ].join("\n");
}

/**
 * `berth-registry-gc [--dry-run] | --end`. Environment (defaults are the registry host's; the tests
 * point them at a registry and an nginx running as local processes):
 * - `BERTH_REGISTRY_GC_CONF`: settings file (default {@link REGISTRY_GC_CONF_PATH});
 * - `BERTH_REGISTRY_URL`: the registry itself, plain HTTP (default: the `registry` container's
 *   address on `berth-registry`, port 5000);
 * - `BERTH_REGISTRY_STORAGE`: the registry's storage root (default: the `registry-data` volume);
 * - `BERTH_REGISTRY_COMMAND`: how to run the registry binary (default `docker exec registry registry`);
 * - `BERTH_REGISTRY_CONFIG`: its config file, as that command sees it (default `/etc/docker/registry/config.yml`);
 * - `BERTH_NGINX_EXEC`: prefix that runs a command where nginx sees its files (default
 *   `docker exec -i registry-nginx`; empty: here);
 * - `BERTH_NGINX_MAINTENANCE_DIR`: the maintenance directory as nginx sees it (default {@link NGINX_MAINTENANCE_DIR});
 * - `BERTH_REGISTRY_GC_GRACE_SECONDS`: grace after maintenance on (default {@link MAINTENANCE_GRACE_SECONDS}).
 */
export function renderRegistryGcScript(): string {
  return `#!/bin/bash
# Berth: registry retention and garbage collection in a window during which nginx refuses writes.
#   berth-registry-gc             maintenance on, retention, garbage-collect, maintenance off
#   berth-registry-gc --dry-run   print what retention and garbage-collect would delete; change nothing
#   berth-registry-gc --end       maintenance off (ExecStopPost: whatever happened to the run)
# Kept: per repository the last keep_tags tags by push time (the mtime of the tag's link in the
# registry's storage, written on every push of the tag), every tag matching a protect= pattern, and
# every digest one of those tags points at (an older tag on the same digest stays too).
set -euo pipefail

conf=\${BERTH_REGISTRY_GC_CONF:-${REGISTRY_GC_CONF_PATH}}
nginx_exec=\${BERTH_NGINX_EXEC-docker exec -i registry-nginx}
maint_dir=\${BERTH_NGINX_MAINTENANCE_DIR:-${NGINX_MAINTENANCE_DIR}}
registry_cmd=\${BERTH_REGISTRY_COMMAND:-docker exec registry registry}
registry_config=\${BERTH_REGISTRY_CONFIG:-/etc/docker/registry/config.yml}
grace=\${BERTH_REGISTRY_GC_GRACE_SECONDS:-${MAINTENANCE_GRACE_SECONDS}}
refusal=$maint_dir/${MAINTENANCE_REFUSAL_FILE}

log() { echo "berth-registry-gc: $*"; }
# shellcheck disable=SC2086 # $nginx_exec is a command prefix, split on purpose
in_nginx() { $nginx_exec "$@"; }
maintenance_off() { in_nginx sh -c 'rm -f "$1"' sh "$refusal"; }

mode=run
case \${1:-} in
  "") ;;
  --dry-run) mode=dry-run ;;
  --end)
    maintenance_off
    log "maintenance off: writes are accepted"
    exit 0
    ;;
  *) echo "usage: $0 [--dry-run | --end]" >&2; exit 2 ;;
esac

keep=
window=
protect=()
while IFS= read -r line; do
  case $line in
    keep_tags=*) keep=\${line#keep_tags=} ;;
    window_minutes=*) window=\${line#window_minutes=} ;;
    protect=*) protect+=("\${line#protect=}") ;;
  esac
done <"$conf"
[[ $keep =~ ^[1-9][0-9]*$ && $window =~ ^[1-9][0-9]*$ ]] || { echo "$conf: keep_tags and window_minutes must be positive integers" >&2; exit 2; }

storage=\${BERTH_REGISTRY_STORAGE:-$(docker volume inspect --format '{{.Mountpoint}}' registry-data)}
repos=$storage/docker/registry/v2/repositories
if [[ -z \${BERTH_REGISTRY_URL:-} ]]; then
  ip=$(docker inspect --format '{{with index .NetworkSettings.Networks "berth-registry"}}{{.IPAddress}}{{end}}' registry)
  [[ -n $ip ]] || { echo "the registry container has no address on berth-registry" >&2; exit 1; }
  BERTH_REGISTRY_URL=http://$ip:5000
fi
url=\${BERTH_REGISTRY_URL%/}

if [[ $mode == run ]]; then
  until_text=$(date -d "+$window minutes" '+%Y-%m-%d %H:%M %Z')
  message="registry maintenance (garbage collection) until $until_text: pushes and deletes are refused, pulls work; push again after that"
  body=$(printf '{"errors":[{"code":"UNSUPPORTED","message":"%s","detail":null}]}' "$message")
  trap 'maintenance_off || true; log "maintenance off: writes are accepted"' EXIT
  printf '%s\\n' "$body" | in_nginx sh -c 'umask 022; mkdir -p "$1" && cat >"$1/.refusal.tmp" && mv "$1/.refusal.tmp" "$2"' sh "$maint_dir" "$refusal"
  log "maintenance on until $until_text: writes are refused"
  sleep "$grace"
fi

before=$(du -sb "$storage" | cut -f1)

# Retention. Tags of each repository, newest push first (ties by name).
is_protected() {
  local re
  for re in "\${protect[@]}"; do [[ $1 =~ $re ]] && return 0; done
  return 1
}
deleted=0
failed=0
while IFS= read -r -d '' manifests; do
  repo=\${manifests%/_manifests}
  repo=\${repo#"$repos"/}
  [[ -d $manifests/tags ]] || continue
  declare -A keep_digest=() tags_of=()
  n=0
  while IFS=' ' read -r _mtime tag; do
    link=$manifests/tags/$tag/current/link
    digest=$(<"$link") || continue
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || continue
    n=$((n + 1))
    if ((n <= keep)) || is_protected "$tag"; then
      keep_digest[$digest]=1
    else
      tags_of[$digest]+=" $tag"
    fi
  done < <(find "$manifests/tags" -mindepth 3 -maxdepth 3 -path '*/current/link' -printf '%T@ %h\\n' |
    sed 's|/current$||; s| .*/| |' | sort -k1,1nr -k2,2)
  for digest in "\${!tags_of[@]}"; do
    if [[ -n \${keep_digest[$digest]:-} ]]; then
      log "kept $repo:\${tags_of[$digest]# } (same digest as a kept tag)"
      continue
    fi
    if [[ $mode == dry-run ]]; then
      log "would delete $repo@$digest (tags:\${tags_of[$digest]})"
      continue
    fi
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$url/v2/$repo/manifests/$digest") || code=000
    if [[ $code == 202 || $code == 404 ]]; then
      log "deleted $repo@$digest (tags:\${tags_of[$digest]})"
      deleted=$((deleted + 1))
    else
      log "could not delete $repo@$digest: HTTP $code"
      failed=1
    fi
  done
  unset keep_digest tags_of
done < <(find "$repos" -type d -name _manifests -prune -print0 2>/dev/null | sort -z)
log "retention: $deleted manifests deleted"

# Garbage collection: blobs no remaining manifest references. Not --delete-untagged: manifests
# pushed by digest and the platform manifests of multi-arch images have no tag of their own.
gc_args=(garbage-collect)
[[ $mode == dry-run ]] && gc_args+=(--dry-run)
# shellcheck disable=SC2086 # $registry_cmd is a command prefix, split on purpose
if ! $registry_cmd "\${gc_args[@]}" "$registry_config" >/tmp/berth-registry-gc.$$ 2>&1; then
  cat /tmp/berth-registry-gc.$$ >&2
  rm -f /tmp/berth-registry-gc.$$
  exit 1
fi
log "garbage-collect: $(sed -n 's/.*\\([0-9][0-9]* blobs marked, .* eligible for deletion\\).*/\\1/p' /tmp/berth-registry-gc.$$)"
rm -f /tmp/berth-registry-gc.$$

after=$(du -sb "$storage" | cut -f1)
log "storage: $((before / 1048576)) MiB before, $((after / 1048576)) MiB after"
exit "$failed"
`;
}

/** The timer and its service (the script under `binDir`). */
export function renderRegistryGcUnits(
  binDir: string,
  s: RegistryUpkeepSettings,
): { name: string; contents: string; enabled: boolean }[] {
  return [
    {
      name: `${REGISTRY_GC_UNIT}.service`,
      enabled: false,
      contents: [
        "[Unit]",
        "Description=Berth: registry retention and garbage collection (writes refused meanwhile)",
        "Requires=docker.service",
        "After=docker.service",
        "",
        "[Service]",
        "Type=oneshot",
        "Nice=10",
        "IOSchedulingClass=idle",
        `ExecStart=${binDir}/${REGISTRY_GC_SCRIPT}`,
        // Whatever happened (failure, the window's timeout, a stop), writes are accepted again.
        `ExecStopPost=${binDir}/${REGISTRY_GC_SCRIPT} --end`,
        `TimeoutStartSec=${s.gcWindowMinutes}min`,
        "",
      ].join("\n"),
    },
    {
      name: `${REGISTRY_GC_UNIT}.timer`,
      enabled: true,
      contents: [
        "[Unit]",
        "Description=Berth: registry garbage collection window",
        "",
        "[Timer]",
        `OnCalendar=${s.gcSchedule}`,
        // Not Persistent: a window missed (host down) is not made up at a random hour after boot.
        "Persistent=false",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
      ].join("\n"),
    },
  ];
}
