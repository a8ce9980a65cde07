/**
 * Fresh production data on a CI host (issue #17, item 1): per production-like service with a
 * `restore` setting, a systemd timer starts `berth-restore <service>` on its schedule. Pure: same
 * input, same bytes.
 *
 * Why a host timer and not a one-shot container: the restore stops and starts the service's
 * container (redis), runs scratch containers of the service's own image and `docker exec`s into the
 * service (postgres, mongodb), so it needs the host's Docker socket, which a container would have to
 * be handed (root on the host by another name). A timer also brings what a one-shot container lacks:
 * a schedule that survives reboots (`Persistent=true`), the journal for every line the script
 * prints, `systemctl start` for a restore now, and a timeout (`TimeoutStartSec=`). The script uses
 * only what Fedora CoreOS and Flatcar ship (bash, curl, sha256sum, coreutils, docker).
 *
 * What `berth-restore <service>` does (settings in `/etc/berth/restore/<service>.conf`, 0600 root):
 * 1. Fetches the latest dump with curl (TLS verified, https only, redirects only to https; a URL
 *    that is a secret is handed to curl on stdin, never on its command line), from a URL, a Swift
 *    temporary URL, or Swift with Keystone v3 credentials (a token is asked for first).
 * 2. Verifies it: the SHA-256 against the configured checksum (a literal or a sha256 file fetched
 *    the same way), then the format's signature (`REDIS` for an RDB, `PGDMP` for pg_dump's custom
 *    format, the archive's magic number or gzip for mongodump, no NUL bytes in plain SQL).
 * 3. Restores it, never over the old data until the new data has loaded and been masked:
 *    - redis: a scratch container of the service's image (no network) loads the dump (a corrupt
 *      one fails here), the masking commands run there, it SAVEs; then the service is stopped, its
 *      `dump.rdb` kept aside, the masked one copied in, the service started and checked (PING,
 *      key count). If it does not come back, the kept file is put back and the service restarted.
 *    - postgres: live. The dump goes into a fresh database `<db>__berth_restore` (pg_restore
 *      --exit-on-error, or psql with ON_ERROR_STOP in one transaction), the masking SQL runs in it,
 *      then connections to `<db>` are refused and closed and the two are swapped by renaming; the
 *      old one is dropped. A failure before the swap drops the fresh database only.
 *    - mongodb: `mongorestore --archive --drop` into the running service, then the masking script
 *      with mongosh. (Not proven here: Debian has no MongoDB; see docs.)
 * 4. Records the attempt: `/var/lib/berth/restore/<service>.json` (result, reason, source without
 *    secrets, size, SHA-256, the dump's Last-Modified and age) and, after a success, the same in
 *    `<service>.last-success.json`; node_exporter's textfile collector gets
 *    `/var/lib/berth/textfile/berth-restore-<service>.prom`. Every step and every failure's reason
 *    also goes to the journal (`journalctl -u berth-restore-<service>`); a failure exits non-zero,
 *    so the unit shows failed.
 */
import { TEXTFILE_DIR } from "./host-metrics.ts";

/** A configured secret (config/types.ts SecretValue): `encrypted` only in offline runs. */
export type RestoreSecret = { kind: "plain"; value: string } | { kind: "encrypted"; ciphertext: string };

/** Where a dump comes from. Temporary URLs and Swift passwords are secrets. */
export type RestoreSource =
  | { kind: "url"; url: string }
  | { kind: "swiftTempUrl"; tempUrl: RestoreSecret }
  | {
      kind: "swift";
      /** Keystone v3 endpoint (`…/v3`): a token is asked for with the password below. */
      authUrl: string;
      /** The project's object-store endpoint (`https://swift…/v1/AUTH_<project>`). */
      storageUrl: string;
      container: string;
      object: string;
      username: string;
      userDomain: string;
      projectName: string;
      projectDomain: string;
      password: RestoreSecret;
    };

/** Dump formats, by the service kind that can restore them. */
export const RESTORE_FORMATS = {
  "redis-rdb": "redis",
  "mongodump-archive": "mongodb",
  "pg-custom": "postgres",
  sql: "postgres",
} as const;
export type RestoreFormat = keyof typeof RESTORE_FORMATS;
/** The service kinds that take a restore. */
export type RestoreKind = (typeof RESTORE_FORMATS)[RestoreFormat];

/** `berth:services.productionLike[i].restore`, resolved (config/validate-restore.ts). */
export interface RestoreSettings {
  source: RestoreSource;
  /** The dump's format; it suits the service's kind. */
  format: RestoreFormat;
  /** The dump's expected SHA-256: a literal, or an https URL of a sha256 file (first field). */
  checksum?: { sha256: string } | { url: string };
  /** systemd OnCalendar= expression, in the host's time zone. */
  schedule: string;
  /** Longest a restore may run (download included), minutes. Default 60. */
  timeoutMinutes: number;
  /** postgres: the database the dump is restored into (through a fresh one swapped in). */
  database?: string;
  /** Masking step run on the restored data before the service is used again: the file's text. */
  masking?: { path: string; text: string };
}

/** A source for people: the URL without query string (a temporary URL's signature) or credentials. */
export function describeSource(source: RestoreSource): string {
  switch (source.kind) {
    case "url":
      return source.url.replace(/[?#].*$/, "");
    case "swiftTempUrl":
      return source.tempUrl.kind === "plain"
        ? `swift temporary URL ${source.tempUrl.value.replace(/[?#].*$/, "")}?temp_url_sig=[secret]`
        : "swift temporary URL [secret]";
    case "swift":
      return `swift ${source.storageUrl}/${source.container}/${source.object} (user ${source.username}, password [secret], via ${source.authUrl})`;
  }
}

export const RESTORE_SCRIPT = "berth-restore";
/** Unit names: `berth-restore-<service>.service` and `.timer`. */
export const restoreUnit = (service: string): string => `berth-restore-${service}`;
export const RESTORE_CONF_DIR = "/etc/berth/restore";
export const RESTORE_STATE_DIR = "/var/lib/berth/restore";
/** What a secret that is not available offline becomes (never a usable credential). */
export const RESTORE_OFFLINE_SECRET = "berth-offline-placeholder-not-a-real-secret";

/** One production-like service's restore job, as rendered into a host's Ignition. */
export interface RestoreJob {
  /** The service's container name (its production name). */
  service: string;
  kind: RestoreKind;
  /** The service's data directory in its container (SERVICE_CATALOG[kind].dataDir). */
  dataDir: string;
  settings: RestoreSettings;
}

/** Single-quoted for sh: `it's` → `'it'\''s'`. */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const secretText = (v: RestoreSecret): string => (v.kind === "plain" ? v.value : RESTORE_OFFLINE_SECRET);

/** The Keystone v3 password-auth request body for a Swift source. */
export function keystoneAuthBody(s: Extract<RestoreSettings["source"], { kind: "swift" }>): string {
  return JSON.stringify({
    auth: {
      identity: {
        methods: ["password"],
        password: {
          user: { name: s.username, domain: { name: s.userDomain }, password: secretText(s.password) },
        },
      },
      scope: { project: { name: s.projectName, domain: { name: s.projectDomain } } },
    },
  });
}

/**
 * `/etc/berth/restore/<service>.conf`: shell assignments the script sources. Written 0600 root
 * (it may hold a temporary URL or, for Swift, the Keystone request with the password).
 */
export function renderRestoreConf(job: RestoreJob): string {
  const s = job.settings;
  const src = s.source;
  const vars: [string, string][] = [
    ["SERVICE", job.service],
    ["KIND", job.kind],
    ["FORMAT", s.format],
    ["DATA_DIR", job.dataDir],
    ["SOURCE_KIND", src.kind],
    ["SOURCE_SHOWN", describeSource(src)],
    ["URL", src.kind === "url" ? src.url : src.kind === "swiftTempUrl" ? secretText(src.tempUrl) : ""],
    ["SWIFT_AUTH_URL", src.kind === "swift" ? `${src.authUrl.replace(/\/$/, "")}/auth/tokens` : ""],
    [
      "SWIFT_OBJECT_URL",
      src.kind === "swift"
        ? `${src.storageUrl}/${encodeURIComponent(src.container)}/${src.object.split("/").map(encodeURIComponent).join("/")}`
        : "",
    ],
    ["SWIFT_AUTH_BODY", src.kind === "swift" ? keystoneAuthBody(src) : ""],
    ["CHECKSUM_SHA256", s.checksum && "sha256" in s.checksum ? s.checksum.sha256 : ""],
    ["CHECKSUM_URL", s.checksum && "url" in s.checksum ? s.checksum.url : ""],
    ["DATABASE", s.database ?? ""],
    // A file name next to this one (the script reads it from its settings directory).
    ["MASKING", s.masking ? `${job.service}.mask` : ""],
    ["MASKING_SHOWN", s.masking?.path ?? ""],
    ["TIMEOUT_SECONDS", String(s.timeoutMinutes * 60)],
  ];
  return [
    `# berth-restore settings for ${job.service} (rendered by Berth; 0600: may hold secrets)`,
    ...vars.map(([k, v]) => `${k}=${shQuote(v)}`),
    "",
  ].join("\n");
}

/** The service and timer of one job (the script under `binDir`). */
export function renderRestoreUnits(
  binDir: string,
  job: RestoreJob,
): { name: string; contents: string; enabled: boolean }[] {
  const unit = restoreUnit(job.service);
  return [
    {
      name: `${unit}.service`,
      enabled: false,
      contents: [
        "[Unit]",
        `Description=Berth: restore ${job.service} from its latest ${job.settings.format} dump`,
        "Requires=docker.service",
        "After=docker.service network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "UMask=0077",
        "Nice=10",
        "IOSchedulingClass=idle",
        `ExecStart=${binDir}/${RESTORE_SCRIPT} ${job.service}`,
        // The download and the restore, with room for the rollback after it.
        `TimeoutStartSec=${String(job.settings.timeoutMinutes + 10)}min`,
        "",
      ].join("\n"),
    },
    {
      name: `${unit}.timer`,
      enabled: true,
      contents: [
        "[Unit]",
        `Description=Berth: fresh production data for ${job.service}`,
        "",
        "[Timer]",
        `OnCalendar=${job.settings.schedule}`,
        // A restore missed while the host was down runs after boot: data stays fresh.
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
      ].join("\n"),
    },
  ];
}

/** Files of one job: its settings and masking step, both 0600 root. */
export function renderRestoreFiles(job: RestoreJob): { path: string; contents: string; mode: number }[] {
  return [
    { path: `${RESTORE_CONF_DIR}/${job.service}.conf`, contents: renderRestoreConf(job), mode: 0o600 },
    ...(job.settings.masking
      ? [
          {
            path: `${RESTORE_CONF_DIR}/${job.service}.mask`,
            contents: job.settings.masking.text,
            mode: 0o600,
          },
        ]
      : []),
  ];
}

/** `berth-restore <service>`: see the module comment. */
export function renderRestoreScript(): string {
  return `#!/bin/bash
# berth-restore <service>: fetch, verify, restore and mask the latest dump of a production-like
# service (rendered by Berth, renderers/restore.ts). Settings: ${RESTORE_CONF_DIR}/<service>.conf.
# A failure leaves the service's previous data in place, says why (journal + status file) and
# exits non-zero.
set -euo pipefail
umask 077
[[ $# -eq 1 && $1 =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "usage: $0 <service>" >&2; exit 2; }
conf_dir=\${BERTH_RESTORE_CONF_DIR:-${RESTORE_CONF_DIR}}
state_dir=\${BERTH_RESTORE_STATE_DIR:-${RESTORE_STATE_DIR}}
textfile_dir=\${BERTH_TEXTFILE_DIR:-${TEXTFILE_DIR}}
conf=$conf_dir/$1.conf
[[ -r $conf ]] || { echo "berth-restore: no settings for $1 ($conf)" >&2; exit 2; }
# shellcheck source=/dev/null
. "$conf"
[[ -z $MASKING ]] || MASKING=$conf_dir/$MASKING
mkdir -p "$state_dir" && chmod 0755 "$state_dir" # the work directories in it are 0700
work=$(mktemp -d "$state_dir/.$SERVICE.XXXXXX")
scratch=berth-restore-$SERVICE
started=$(date +%s)
bytes=0 sha='' modified='' age='' detail=''
log() { echo "berth-restore $SERVICE: $*" >&2; }
cleanup() {
  docker rm -f -v "$scratch" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

json_str() { # a JSON string: backslash, quote and control characters escaped
  local s=$1
  s=\${s//\\\\/\\\\\\\\}
  s=\${s//\\"/\\\\\\"}
  s=$(printf '%s' "$s" | tr '\\000-\\037' ' ')
  printf '"%s"' "$s"
}
write_atomic() { # path, text
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  printf '%s' "$2" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$1"
}
record() { # result, reason
  local now
  now=$(date +%s)
  local doc
  doc=$(printf '{"service":%s,"kind":%s,"format":%s,"source":%s,"result":%s,"reason":%s,"startedAt":%s,"finishedAt":%s,"bytes":%s,"sha256":%s,"dumpLastModified":%s,"dumpAgeSeconds":%s,"detail":%s,"masking":%s}\\n' \\
    "$(json_str "$SERVICE")" "$(json_str "$KIND")" "$(json_str "$FORMAT")" "$(json_str "$SOURCE_SHOWN")" \\
    "$(json_str "$1")" "$(json_str "$2")" "$started" "$now" "$bytes" "$(json_str "$sha")" \\
    "$(json_str "$modified")" "\${age:-null}" "$(json_str "$detail")" "$(json_str "$MASKING_SHOWN")")
  write_atomic "$state_dir/$SERVICE.json" "$doc"
  [[ $1 != ok ]] || write_atomic "$state_dir/$SERVICE.last-success.json" "$doc"
  if [[ -d $textfile_dir ]]; then
    local last ok_at=0 ok_bytes=0 ok_age=0
    last=$state_dir/$SERVICE.last-success.json
    if [[ -r $last ]]; then
      ok_at=$(sed -n 's/.*"finishedAt":\\([0-9]*\\).*/\\1/p' "$last")
      ok_bytes=$(sed -n 's/.*"bytes":\\([0-9]*\\).*/\\1/p' "$last")
      ok_age=$(sed -n 's/.*"dumpAgeSeconds":\\([0-9]*\\).*/\\1/p' "$last")
    fi
    local l="service=\\"$SERVICE\\""
    write_atomic "$textfile_dir/berth-restore-$SERVICE.prom" "$(printf '%s\\n' \\
      "# HELP berth_restore_last_attempt_timestamp_seconds When the last restore attempt finished." \\
      "# TYPE berth_restore_last_attempt_timestamp_seconds gauge" \\
      "berth_restore_last_attempt_timestamp_seconds{$l} $now" \\
      "# HELP berth_restore_last_attempt_success 1 when the last restore attempt succeeded." \\
      "# TYPE berth_restore_last_attempt_success gauge" \\
      "berth_restore_last_attempt_success{$l} $([[ $1 == ok ]] && echo 1 || echo 0)" \\
      "# HELP berth_restore_last_success_timestamp_seconds When the last successful restore finished." \\
      "# TYPE berth_restore_last_success_timestamp_seconds gauge" \\
      "berth_restore_last_success_timestamp_seconds{$l} \${ok_at:-0}" \\
      "# HELP berth_restore_last_success_bytes Size of the dump the last successful restore loaded." \\
      "# TYPE berth_restore_last_success_bytes gauge" \\
      "berth_restore_last_success_bytes{$l} \${ok_bytes:-0}" \\
      "# HELP berth_restore_last_success_dump_age_seconds Age of that dump (Last-Modified) when it was fetched." \\
      "# TYPE berth_restore_last_success_dump_age_seconds gauge" \\
      "berth_restore_last_success_dump_age_seconds{$l} \${ok_age:-0}")"
  fi
}
fail() {
  log "FAILED: $*; the previous data is left in place"
  record failed "$*"
  exit 1
}

# --- 1. fetch -----------------------------------------------------------------------------------
# curl reads its URL (and any token header) from stdin: secrets never show in the process list.
fetch() { # config lines on stdin; output file, headers file
  curl --config - --fail --silent --show-error --location --proto =https --proto-redir =https \\
    --tlsv1.2 --retry 3 --retry-delay 5 --connect-timeout 30 --max-time "$TIMEOUT_SECONDS" \\
    --output "$1" --dump-header "$2" 2>"$work/curl.err"
}
curl_quote() { local s=\${1//\\\\/\\\\\\\\}; printf '"%s"' "\${s//\\"/\\\\\\"}"; }
log "fetching $SOURCE_SHOWN"
case $SOURCE_KIND in
  url | swiftTempUrl)
    printf 'url = %s\\n' "$(curl_quote "$URL")" | fetch "$work/dump" "$work/headers" ||
      fail "download of $SOURCE_SHOWN failed: $(tail -n 1 "$work/curl.err")" ;;
  swift)
    printf '%s' "$SWIFT_AUTH_BODY" >"$work/auth.json"
    printf 'url = %s\\nheader = "Content-Type: application/json"\\ndata = "@%s"\\n' \\
      "$(curl_quote "$SWIFT_AUTH_URL")" "$work/auth.json" | fetch "$work/token.json" "$work/token.headers" ||
      fail "Keystone refused a token for $SOURCE_SHOWN: $(tail -n 1 "$work/curl.err")"
    token=$(tr -d '\\r' <"$work/token.headers" | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p' | tail -n 1)
    [[ -n $token ]] || fail "Keystone answered without an X-Subject-Token for $SOURCE_SHOWN"
    printf 'url = %s\\nheader = "X-Auth-Token: %s"\\n' "$(curl_quote "$SWIFT_OBJECT_URL")" "$token" |
      fetch "$work/dump" "$work/headers" ||
      fail "download of $SOURCE_SHOWN failed: $(tail -n 1 "$work/curl.err")" ;;
  *) fail "unknown source kind $SOURCE_KIND" ;;
esac
bytes=$(stat -c %s "$work/dump")
[[ $bytes -gt 0 ]] || fail "the dump from $SOURCE_SHOWN is empty"
sha=$(sha256sum "$work/dump" | cut -d ' ' -f 1)
modified=$(tr -d '\\r' <"$work/headers" | sed -n 's/^[Ll]ast-[Mm]odified: *//p' | tail -n 1)
if [[ -n $modified ]] && m=$(date -d "$modified" +%s 2>/dev/null); then
  age=$((started - m))
  ((age >= 0)) || age=0
fi
log "fetched $bytes bytes, sha256 $sha, last modified \${modified:-unknown}"

# --- 2. verify ----------------------------------------------------------------------------------
want=$CHECKSUM_SHA256
if [[ -n $CHECKSUM_URL ]]; then
  printf 'url = %s\\n' "$(curl_quote "$CHECKSUM_URL")" | fetch "$work/sha256" "$work/sha256.headers" ||
    fail "download of the checksum $CHECKSUM_URL failed: $(tail -n 1 "$work/curl.err")"
  want=$(head -n 1 "$work/sha256" | cut -d ' ' -f 1)
fi
if [[ -n $want ]]; then
  want=\${want,,}
  [[ $want =~ ^[0-9a-f]{64}$ ]] || fail "the checksum is not a SHA-256 (64 hex digits)"
  [[ $want == "$sha" ]] || fail "checksum mismatch: the dump's sha256 is $sha, expected $want"
  log "checksum verified"
fi
magic=$(head -c 8 "$work/dump" | od -An -tx1 | tr -d ' \\n')
case $FORMAT in
  redis-rdb) [[ $(head -c 5 "$work/dump") == REDIS && $(head -c 9 "$work/dump" | tail -c 4) =~ ^[0-9]{4}$ ]] ||
    fail "not a redis RDB file (no REDIS<version> signature; starts with $magic)" ;;
  pg-custom) [[ $(head -c 5 "$work/dump") == PGDMP ]] ||
    fail "not a pg_dump custom-format archive (no PGDMP signature; starts with $magic)" ;;
  mongodump-archive) [[ $magic == 6de29981* || $magic == 1f8b* ]] ||
    fail "not a mongodump archive (no archive magic number or gzip header; starts with $magic)" ;;
  sql) [[ $(head -c 1048576 "$work/dump" | tr -d '\\000' | wc -c) -eq $(head -c 1048576 "$work/dump" | wc -c) ]] ||
    fail "not plain SQL text (NUL bytes in the first MiB)" ;;
  *) fail "unknown format $FORMAT" ;;
esac
docker inspect "$SERVICE" >/dev/null 2>&1 || fail "no container $SERVICE on this host"

# --- 3. restore ---------------------------------------------------------------------------------
restore_redis() {
  local image keys n=0
  image=$(docker inspect -f '{{.Config.Image}}' "$SERVICE")
  docker rm -f -v "$scratch" >/dev/null 2>&1 || true
  # The service's own image, no network, as root: loads the dump, takes the masking, saves.
  docker create --name "$scratch" --network none --entrypoint redis-server "$image" \\
    --dir "$DATA_DIR" --dbfilename dump.rdb --appendonly no --save '' >/dev/null ||
    fail "cannot create the scratch container from $image"
  docker cp "$work/dump" "$scratch:$DATA_DIR/dump.rdb" >/dev/null || fail "cannot copy the dump into the scratch container"
  docker start "$scratch" >/dev/null || fail "the scratch redis did not start"
  until [[ $(docker exec "$scratch" redis-cli ping 2>/dev/null) == PONG ]]; do
    if [[ $(docker inspect -f '{{.State.Running}}' "$scratch") != true ]]; then
      fail "redis could not load the dump: $(docker logs --tail 20 "$scratch" 2>&1 | grep -iE 'error|bad|short|unexpected|wrong|corrupt|abort' | tail -n 2 | tr '\\n' ' ')"
    fi
    ((n++ < 600)) || fail "the scratch redis did not finish loading the dump in 10 minutes"
    sleep 1
  done
  if [[ -n $MASKING ]]; then
    log "masking with $MASKING_SHOWN"
    docker exec -i "$scratch" redis-cli <"$MASKING" >"$work/mask.out" 2>&1 || fail "masking failed: $(tail -n 3 "$work/mask.out" | tr '\\n' ' ')"
    if grep -Eq '^(\\(error\\) )?(ERR|WRONGTYPE|NOSCRIPT|Error)' "$work/mask.out"; then
      fail "masking failed: $(grep -Em 1 '^(\\(error\\) )?(ERR|WRONGTYPE|NOSCRIPT|Error)' "$work/mask.out")"
    fi
  fi
  keys=$(docker exec "$scratch" redis-cli dbsize)
  [[ $(docker exec "$scratch" redis-cli save) == OK ]] || fail "the scratch redis could not save the masked data"
  docker cp "$scratch:$DATA_DIR/dump.rdb" "$work/masked.rdb" >/dev/null || fail "cannot copy the masked dump out"
  docker rm -f -v "$scratch" >/dev/null
  # The swap: the service writes its dataset on stop, that file is kept aside until the new one runs.
  log "stopping $SERVICE to swap in the restored data ($keys keys)"
  docker stop -t 60 "$SERVICE" >/dev/null || fail "cannot stop $SERVICE"
  local had_previous=0
  if docker cp "$SERVICE:$DATA_DIR/dump.rdb" "$work/previous.rdb" >/dev/null 2>&1; then had_previous=1; fi
  rollback() {
    log "rolling back: $*"
    docker stop -t 60 "$SERVICE" >/dev/null 2>&1 || true
    if ((had_previous)); then
      docker cp "$work/previous.rdb" "$SERVICE:$DATA_DIR/dump.rdb" >/dev/null 2>&1 || true
    fi
    docker start "$SERVICE" >/dev/null 2>&1 || true
    fail "$*"
  }
  docker cp "$work/masked.rdb" "$SERVICE:$DATA_DIR/dump.rdb" >/dev/null || rollback "cannot copy the restored data into $SERVICE"
  docker start "$SERVICE" >/dev/null || rollback "$SERVICE did not start on the restored data"
  n=0
  until [[ $(docker exec "$SERVICE" redis-cli ping 2>/dev/null) == PONG ]]; do
    ((n++ < 600)) || rollback "$SERVICE did not answer on the restored data"
    sleep 1
  done
  [[ $(docker exec "$SERVICE" redis-cli dbsize) == "$keys" ]] || rollback "$SERVICE came back without the restored keys"
  detail="$keys keys"
}

restore_postgres() {
  local db=$DATABASE fresh=\${DATABASE}__berth_restore old=\${DATABASE}__berth_previous
  pg() { docker exec -i "$SERVICE" psql -X -q -v ON_ERROR_STOP=1 -U postgres "$@"; }
  pg -d postgres -c "DROP DATABASE IF EXISTS \\"$fresh\\" WITH (FORCE)" -c "CREATE DATABASE \\"$fresh\\"" >/dev/null 2>"$work/pg.err" ||
    fail "cannot create the fresh database $fresh: $(tail -n 1 "$work/pg.err")"
  drop_fresh() {
    pg -d postgres -c "DROP DATABASE IF EXISTS \\"$fresh\\" WITH (FORCE)" >/dev/null 2>&1 || true
    fail "$*"
  }
  if [[ $FORMAT == pg-custom ]]; then
    docker exec -i "$SERVICE" pg_restore -U postgres --no-owner --no-privileges --exit-on-error -d "$fresh" \\
      <"$work/dump" >/dev/null 2>"$work/pg.err" || drop_fresh "pg_restore failed: $(tail -n 2 "$work/pg.err" | tr '\\n' ' ')"
  else
    pg -d "$fresh" --single-transaction <"$work/dump" >/dev/null 2>"$work/pg.err" ||
      drop_fresh "the SQL dump failed: $(tail -n 2 "$work/pg.err" | tr '\\n' ' ')"
  fi
  if [[ -n $MASKING ]]; then
    log "masking with $MASKING_SHOWN"
    pg -d "$fresh" --single-transaction <"$MASKING" >/dev/null 2>"$work/pg.err" ||
      drop_fresh "masking failed: $(tail -n 2 "$work/pg.err" | tr '\\n' ' ')"
  fi
  detail="$(pg -d "$fresh" -tA -c "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')") tables"
  log "swapping $fresh in as $db"
  swap_failed() {
    # Whatever step failed, $db is there again (the old one renamed back if it had gone) and open.
    pg -d postgres >/dev/null 2>&1 <<SQL || true
SELECT format('ALTER DATABASE %I RENAME TO %I', '$old', '$db') FROM pg_database
  WHERE datname = '$old' AND NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \\gexec
SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS true', '$db') FROM pg_database WHERE datname = '$db' \\gexec
SQL
    drop_fresh "$*"
  }
  pg -d postgres >/dev/null 2>"$work/pg.err" <<SQL || swap_failed "the swap failed: $(tail -n 2 "$work/pg.err" | tr '\n' ' ')"
SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
  WHERE datname = '$old' AND EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \\gexec
SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', datname) FROM pg_database WHERE datname = '$db' \\gexec
SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid();
SELECT format('ALTER DATABASE %I RENAME TO %I', datname, '$old') FROM pg_database WHERE datname = '$db' \\gexec
ALTER DATABASE "$fresh" RENAME TO "$db";
SQL
  pg -d postgres -c "DROP DATABASE IF EXISTS \\"$old\\" WITH (FORCE)" >/dev/null 2>&1 || log "could not drop $old (dropped on the next run)"
}

restore_mongodb() {
  local gz=()
  [[ $magic != 1f8b* ]] || gz=(--gzip)
  docker exec -i "$SERVICE" mongorestore --quiet --archive --drop "\${gz[@]}" <"$work/dump" >/dev/null 2>"$work/mongo.err" ||
    fail "mongorestore failed: $(tail -n 2 "$work/mongo.err" | tr '\\n' ' ')"
  if [[ -n $MASKING ]]; then
    log "masking with $MASKING_SHOWN"
    docker exec -i "$SERVICE" mongosh --quiet --norc <"$MASKING" >/dev/null 2>"$work/mongo.err" ||
      fail "masking failed (the restored data is in place, unmasked): $(tail -n 2 "$work/mongo.err" | tr '\\n' ' ')"
  fi
}

log "restoring into $SERVICE ($KIND)"
case $KIND in
  redis) restore_redis ;;
  postgres) restore_postgres ;;
  mongodb) restore_mongodb ;;
  *) fail "a $KIND service cannot be restored" ;;
esac
record ok ""
log "restored $bytes bytes from $SOURCE_SHOWN (sha256 $sha, dump age \${age:-unknown} s) in $(($(date +%s) - started)) s\${detail:+: $detail}"
`;
}
