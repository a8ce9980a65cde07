/**
 * Berth's own host metrics for node_exporter's textfile collector (pure): a script that writes
 * them and the systemd service and timer that run it every minute. Same input, same bytes.
 *
 * The file carries the `berth_*` metrics the alert rules use (renderers/prometheus.ts
 * `BERTH_TEXTFILE_METRICS`):
 * - `berth_tls_cert_not_after_timestamp_seconds{cert}`: the end of validity of each certificate the
 *   host serves, read from its PEM file (dockerd's server certificate) or from the TLS endpoint
 *   itself (the registry's nginx, whose certificate lives only inside the container), so the value
 *   is the certificate clients actually get;
 * - `berth_container_restart_count{container}`: Docker's `RestartCount` of every container with a
 *   restart policy (Berth's services and agents; builds and one-off runs have none and never
 *   restart).
 *
 * Written atomically: into a dot-file of the same directory (node_exporter reads only `*.prom`),
 * then renamed over `berth.prom`, so a scrape never sees half a file. A source that cannot be read
 * leaves its lines out, is reported on stderr, and makes the run exit 1 (the unit shows as failed)
 * after the file is written with everything else.
 */
import { RenderError, checkPath, checkPort, isHostname, isIpAddress } from "./common.ts";
import { BERTH_TEXTFILE_METRICS } from "./prometheus.ts";

const R = "host-metrics";

/** Name of the script (in the OS profile's script directory). */
export const TEXTFILE_METRICS_SCRIPT = "berth-textfile-metrics";
/** Its service and timer. */
export const TEXTFILE_METRICS_UNIT = "berth-textfile-metrics.service";
export const TEXTFILE_METRICS_TIMER = "berth-textfile-metrics.timer";
/** The directory node_exporter's textfile collector reads (on the host). */
export const TEXTFILE_DIR = "/var/lib/berth/textfile";
/** The file the script writes there. */
export const TEXTFILE_NAME = "berth.prom";

/** Where a certificate's end of validity is read from. */
export type CertSource =
  | { name: string; file: string }
  | { name: string; tls: { address: string; port: number; serverName: string } };

export interface TextfileMetricsInput {
  /** Directory of the scripts, e.g. `/usr/local/bin`. */
  binDir: string;
  /** Output directory. Default {@link TEXTFILE_DIR}. */
  dir?: string;
  /** Certificates the host serves (label `cert`); names unique, `[a-z0-9-]+`. */
  certs: CertSource[];
}

/** The writer. Usage: `berth-textfile-metrics DIR [--cert NAME=file:PATH|NAME=tls:ADDRESS:PORT:SERVERNAME]...`. */
export function renderTextfileMetricsScript(): string {
  const [certMetric, restartMetric] = Object.keys(BERTH_TEXTFILE_METRICS) as [string, string];
  const help = BERTH_TEXTFILE_METRICS as Record<string, string>;
  return `#!/bin/bash
# Berth: host metrics for node_exporter's textfile collector, written atomically to DIR/${TEXTFILE_NAME}.
#   $0 DIR [--cert NAME=file:PATH | --cert NAME=tls:ADDRESS:PORT:SERVERNAME]...
# Exit 1 when a source could not be read (its lines are left out; the rest is written).
set -uo pipefail
[[ $# -ge 1 && -n $1 ]] || { echo "usage: $0 DIR [--cert NAME=file:PATH|NAME=tls:ADDRESS:PORT:SERVERNAME]..." >&2; exit 2; }
dir=$1
shift
certs=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --cert)
      [[ $# -ge 2 && $2 =~ ^[a-z0-9-]+=(file:.+|tls:[^:]+:[0-9]+:[^:]+)$ ]] || { echo "bad --cert '\${2:-}'" >&2; exit 2; }
      certs+=("$2")
      shift 2
      ;;
    *) echo "unknown argument '$1'" >&2; exit 2 ;;
  esac
done
mkdir -p -- "$dir"
failed=0
tmp=$(mktemp -- "$dir/.${TEXTFILE_NAME}.XXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT

# not_after PEM-TEXT: the certificate's end of validity, in seconds since the epoch.
not_after() {
  local end
  end=$(openssl x509 -noout -enddate 2>/dev/null <<<"$1") || return 1
  date -u -d "\${end#notAfter=}" +%s
}

{
  echo "# HELP ${certMetric} ${help[certMetric]}"
  echo "# TYPE ${certMetric} gauge"
  for spec in "\${certs[@]}"; do
    name=\${spec%%=*}
    src=\${spec#*=}
    pem=
    case $src in
      file:*) pem=$(cat -- "\${src#file:}" 2>/dev/null) ;;
      tls:*)
        IFS=: read -r _ address port server <<<"$src"
        pem=$(timeout 10 openssl s_client -connect "$address:$port" -servername "$server" </dev/null 2>/dev/null | openssl x509 2>/dev/null)
        ;;
    esac
    if ts=$(not_after "$pem"); then
      echo "${certMetric}{cert=\\"$name\\"} $ts"
    else
      echo "berth-textfile-metrics: cannot read the $name certificate ($src)" >&2
      failed=1
    fi
  done

  echo "# HELP ${restartMetric} ${help[restartMetric]}"
  echo "# TYPE ${restartMetric} counter"
  # Every container with a restart policy: name (without the leading /) and RestartCount.
  if ids=$(docker ps -aq 2>/dev/null); then
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086 # one id per word
      docker inspect --format '{{.HostConfig.RestartPolicy.Name}} {{.Name}} {{.RestartCount}}' $ids 2>/dev/null |
        while read -r policy cname count; do
          [[ -n $policy && $policy != no ]] || continue
          echo "${restartMetric}{container=\\"\${cname#/}\\"} $count"
        done
    fi
  else
    echo "berth-textfile-metrics: dockerd does not answer; no restart counts" >&2
    failed=1
  fi
} >"$tmp"
chmod 0644 -- "$tmp"
mv -f -- "$tmp" "$dir/${TEXTFILE_NAME}"
trap - EXIT
exit "$failed"
`;
}

function checkInput(input: TextfileMetricsInput): void {
  checkPath(R, "binDir", input.binDir);
  checkPath(R, "dir", input.dir ?? TEXTFILE_DIR);
  const seen = new Set<string>();
  input.certs.forEach((c, i) => {
    if (!/^[a-z0-9-]+$/.test(c.name))
      throw new RenderError(R, `certs[${i}].name`, `${JSON.stringify(c.name)} must match [a-z0-9-]+`);
    if (seen.has(c.name)) throw new RenderError(R, `certs[${i}].name`, `repeats ${c.name}`);
    seen.add(c.name);
    if ("file" in c) checkPath(R, `certs[${i}].file`, c.file);
    else {
      if (!isIpAddress(c.tls.address) || c.tls.address.includes(":"))
        throw new RenderError(R, `certs[${i}].tls.address`, `${c.tls.address} is not an IPv4 address`);
      checkPort(R, `certs[${i}].tls.port`, c.tls.port);
      if (!isHostname(c.tls.serverName))
        throw new RenderError(R, `certs[${i}].tls.serverName`, `${c.tls.serverName} is not a DNS name`);
    }
  });
}

/** The argument of `--cert` for one source. */
export function certArgument(c: CertSource): string {
  return "file" in c
    ? `${c.name}=file:${c.file}`
    : `${c.name}=tls:${c.tls.address}:${c.tls.port}:${c.tls.serverName}`;
}

/** The service (oneshot) and its timer: every minute, from a minute after boot. */
export function renderTextfileMetricsUnits(
  input: TextfileMetricsInput,
): { name: string; contents: string; enabled: boolean }[] {
  checkInput(input);
  const args = [input.dir ?? TEXTFILE_DIR, ...input.certs.flatMap((c) => ["--cert", certArgument(c)])];
  return [
    {
      name: TEXTFILE_METRICS_UNIT,
      enabled: false,
      contents: [
        "[Unit]",
        "Description=Berth: host metrics for node_exporter (certificate expiry, container restarts)",
        "After=docker.service",
        "",
        "[Service]",
        "Type=oneshot",
        "Nice=10",
        `ExecStart=${input.binDir}/${TEXTFILE_METRICS_SCRIPT} ${args.join(" ")}`,
        "",
      ].join("\n"),
    },
    {
      name: TEXTFILE_METRICS_TIMER,
      enabled: true,
      contents: [
        "[Unit]",
        "Description=Berth: host metrics for node_exporter, every minute",
        "",
        "[Timer]",
        "OnBootSec=1min",
        "OnUnitActiveSec=1min",
        "AccuracySec=5s",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
      ].join("\n"),
    },
  ];
}
