/**
 * OS updates that wait for builds: the update policy of one host, rendered as Zincati's TOML
 * (Fedora CoreOS) or Flatcar's update.conf, and a build-aware shutdown inhibitor (a shell script
 * plus its systemd service). Pure: same input, same bytes.
 *
 * How the pieces fit:
 * - Zincati (`periodic` by default) only finalizes a staged update inside the host's maintenance
 *   window; each host of a stack gets its own window (the stack's windows shifted by
 *   `index × staggerMinutes`), so no two hosts reboot together.
 * - rpm-ostree does not finalize a staged deployment while a systemd `block` shutdown inhibitor is
 *   held (coreos/rpm-ostree#2862). `berth-build-inhibit` holds one while a build runs on the host,
 *   and lets go when the host is idle or after `maxBuildWaitHours` of continuous builds (then the
 *   reboot goes ahead at the next attempt in a window).
 */
import { stringify as stringifyToml } from "smol-toml";
import type { HostOs } from "./host-os.ts";
import { RenderError } from "./common.ts";

/** Zincati's update strategies Berth offers (`immediate` is Zincati's own default). */
export type UpdateStrategy = "periodic" | "fleet_lock" | "immediate";

/** Zincati's day names, Monday first (a week runs Mon 00:00 to Sun 24:00). */
export const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** One weekly maintenance window: on each of `days`, from `startTime` for `lengthMinutes`. */
export interface UpdateWindow {
  days: Weekday[];
  /** `HH:MM`, 24-hour clock, in the policy's time zone. */
  startTime: string;
  lengthMinutes: number;
}

/** The update policy of one host (its windows already staggered). */
export interface HostUpdatePolicy {
  strategy: UpdateStrategy;
  /** This host's windows (used by `periodic`). */
  windows: UpdateWindow[];
  /** IANA time zone the windows are in. */
  timeZone: string;
  /** Lock server for `fleet_lock`. */
  fleetLockUrl?: string;
  /** Hours of continuous builds after which the inhibitor lets go, so the reboot goes ahead. */
  maxBuildWaitHours: number;
  /** Seconds between two looks at the host's builds. */
  pollSeconds?: number;
}

/** Defaults of the stack settings `hosts.updates` (also the schema's defaults). */
export const UPDATE_DEFAULTS = {
  strategy: "periodic" as UpdateStrategy,
  /** Host n (from 0) starts n hours later: production's three hosts reboot at 02:00, 03:00, 04:00. */
  staggerMinutes: 60,
  maxBuildWaitHours: 6,
};

/**
 * Default windows: weekend nights, from 02:00 for an hour. Fedora CoreOS (Zincati) gets Saturday
 * and Sunday; Flatcar's locksmithd takes one window on one day (or every day), so Sunday only.
 */
export function defaultWindows(os: HostOs): UpdateWindow[] {
  return [{ days: os === "flatcar" ? ["Sun"] : ["Sat", "Sun"], startTime: "02:00", lengthMinutes: 60 }];
}

/** Minutes in a week. */
export const WEEK_MINUTES = 7 * 24 * 60;

const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** `HH:MM` → minutes after midnight; throws on anything else. */
export function parseStartTime(time: string): number {
  const m = TIME_RE.exec(time);
  if (!m) throw new RenderError("updates", "startTime", `must be HH:MM (24-hour clock), got "${time}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function formatTime(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

/** One occurrence of a window in the week: [start, end) in minutes after Monday 00:00. */
export interface WeekInterval {
  start: number;
  end: number;
}

/**
 * The windows of host `index` (0-based): every window shifted `index × staggerMinutes` later. A
 * shift past midnight moves the days along. Throws when a shifted window would start or end past
 * the end of the week (Sunday 24:00): Berth's windows never wrap around the week.
 */
export function staggeredWindows(
  windows: UpdateWindow[],
  index: number,
  staggerMinutes: number,
): UpdateWindow[] {
  const offset = index * staggerMinutes;
  return windows.map((w) => {
    const total = parseStartTime(w.startTime) + offset;
    const dayShift = Math.floor(total / 1440);
    const days = w.days.map((d) => {
      const i = WEEKDAYS.indexOf(d) + dayShift;
      const day = WEEKDAYS[i];
      if (day === undefined)
        throw new RenderError(
          "updates",
          "staggerMinutes",
          `the window of host ${index + 1} moves past the end of the week`,
        );
      return day;
    });
    return { days, startTime: formatTime(total % 1440), lengthMinutes: w.lengthMinutes };
  });
}

/** Every occurrence of `windows` in the week, in minutes after Monday 00:00 (sorted). */
export function weekIntervals(windows: UpdateWindow[]): WeekInterval[] {
  const out: WeekInterval[] = [];
  for (const w of windows) {
    const start = parseStartTime(w.startTime);
    for (const d of w.days) {
      const s = WEEKDAYS.indexOf(d) * 1440 + start;
      out.push({ start: s, end: s + w.lengthMinutes });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * The windows as systemd calendar expressions (one per window, its days joined), e.g.
 * `Sat,Sun *-*-* 02:00:00 Europe/Rome`: a check with `systemd-analyze calendar`, and a readable
 * comment in the rendered files.
 */
export function windowCalendarExpressions(policy: Pick<HostUpdatePolicy, "windows" | "timeZone">): string[] {
  return policy.windows.map((w) => `${w.days.join(",")} *-*-* ${w.startTime}:00 ${policy.timeZone}`);
}

/** The Zincati drop-in, `/etc/zincati/config.d/55-berth-updates.toml`. */
export function renderZincatiToml(policy: HostUpdatePolicy): string {
  const header = [
    "# Berth: when this host may reboot into a staged OS update (rendered, first boot).",
    "# berth-build-inhibit.service also holds a shutdown inhibitor while builds run, which rpm-ostree",
    `# honours: the reboot then waits until the host is idle, or ${policy.maxBuildWaitHours} h of builds.`,
  ];
  let doc: Record<string, unknown>;
  if (policy.strategy === "periodic") {
    header.push(
      ...windowCalendarExpressions(policy).map(
        (c, i) => `# window ${i + 1}: ${c}, ${policy.windows[i]?.lengthMinutes ?? 0} minutes`,
      ),
    );
    doc = {
      updates: {
        strategy: "periodic",
        periodic: {
          time_zone: policy.timeZone,
          window: policy.windows.map((w) => ({
            days: [...w.days],
            start_time: w.startTime,
            length_minutes: w.lengthMinutes,
          })),
        },
      },
    };
  } else if (policy.strategy === "fleet_lock") {
    if (!policy.fleetLockUrl)
      throw new RenderError("renderZincatiToml", "fleetLockUrl", "fleet_lock needs it");
    doc = { updates: { strategy: "fleet_lock", fleet_lock: { base_url: policy.fleetLockUrl } } };
  } else {
    doc = { updates: { strategy: "immediate" } };
  }
  return `${header.join("\n")}\n\n${stringifyToml(doc)}\n`;
}

/**
 * Flatcar's `/etc/flatcar/update.conf`. locksmithd knows one window, in the host's local time: a
 * day and a start (`Sat 02:00`), or a start alone for every day. Validation only lets through
 * policies that fit (one window; one day or all seven; the host's own time zone; no fleet_lock).
 */
export function renderFlatcarUpdateConf(policy: HostUpdatePolicy): string {
  const lines = ["# Berth: when this host may reboot into a downloaded OS update (rendered, first boot)."];
  if (policy.strategy === "fleet_lock") {
    throw new RenderError(
      "renderFlatcarUpdateConf",
      "strategy",
      "fleet_lock is not supported on Flatcar (locksmithd locks through etcd, not a fleet_lock server)",
    );
  }
  lines.push("REBOOT_STRATEGY=reboot");
  if (policy.strategy === "periodic") {
    const [w, ...more] = policy.windows;
    if (!w || more.length > 0)
      throw new RenderError(
        "renderFlatcarUpdateConf",
        "windows",
        "locksmithd takes exactly one reboot window",
      );
    let start: string;
    if (w.days.length === 7) start = w.startTime;
    else if (w.days.length === 1) start = `${w.days[0] as string} ${w.startTime}`;
    else
      throw new RenderError(
        "renderFlatcarUpdateConf",
        "windows[0].days",
        "a locksmithd reboot window is on one day or on every day",
      );
    lines.push(
      `LOCKSMITHD_REBOOT_WINDOW_START="${start}"`,
      `LOCKSMITHD_REBOOT_WINDOW_LENGTH=${w.lengthMinutes}m`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Label the Jenkins Docker plugin puts on every container it starts (its Jenkins instance id). */
export const DOCKER_PLUGIN_LABEL = "com.nirima.jenkins.plugins.docker.JenkinsId";
/** Label a job may put on containers it starts itself, so they count as builds too. */
export const BUILD_LABEL = "org.berth.build";
/** Names of the static SSH agents (components/jenkins.ts). */
export const AGENT_NAME_PATTERN = "^jenkins-agent-[0-9]+$";

/** File name of the inhibitor script (under the OS's script directory). */
export const BUILD_INHIBIT_SCRIPT = "berth-build-inhibit";
/** Its service. */
export const BUILD_INHIBIT_UNIT = "berth-build-inhibit.service";

/**
 * The inhibitor script. `--check` prints the decision and exits (0: a build runs, 1: idle); with no
 * argument it loops: every `BERTH_POLL_SECONDS` it looks, takes a `block` shutdown inhibitor when a
 * build runs, and lets go when the host is idle or after `BERTH_MAX_HOLD_SECONDS` of continuous
 * builds (then it takes none again until the host has been idle once).
 *
 * A build is running when
 * - a running container carries the Docker plugin's label ({@link DOCKER_PLUGIN_LABEL}: a per-build
 *   agent, one container per build) or {@link BUILD_LABEL}; or
 * - a static agent (`jenkins-agent-<n>`) runs any process other than its idle set: sshd (the
 *   listener and the controller's session), docker-init/tini, the remoting JVM (`java` with
 *   `remoting.jar` or `agent.jar` on its command line) and the shells that started it, and the
 *   image's health check (bash probing port 22, with its children). A job's steps run as children
 *   of the JVM (`sh`, `make`, `mvn` → `java` without remoting.jar …), so they are never in that set.
 * A Docker that does not answer counts as idle: no build can run, and a reboot may well help.
 */
export function renderBuildInhibitScript(): string {
  return `#!/bin/bash
# Berth: hold a systemd shutdown inhibitor (mode block) while a CI build runs on this host, so a
# staged OS update does not reboot it mid-build. rpm-ostree does not finalize a deployment while a
# block inhibitor is held; the inhibitor goes when the host is idle or after BERTH_MAX_HOLD_SECONDS.
#
#   berth-build-inhibit             loop (the service)
#   berth-build-inhibit --check     print "build running: <why>" (exit 0) or "idle" (exit 1)
#   berth-build-inhibit --check-agent NAME   the same for one static agent container
set -uo pipefail

POLL=\${BERTH_POLL_SECONDS:-30}
MAX_HOLD=\${BERTH_MAX_HOLD_SECONDS:-21600}
PLUGIN_LABEL=${DOCKER_PLUGIN_LABEL}
BUILD_LABEL=${BUILD_LABEL}
AGENT_RE='${AGENT_NAME_PATTERN}'

log() { echo "berth-build-inhibit: $*" >&2; }

# Exit 0 when the static agent container $1 runs anything beyond its idle processes.
agent_busy() {
  local top
  top=$(docker top "$1" -eo pid,ppid,comm,args 2>/dev/null) || return 1
  awk '
    NR == 1 { next }
    {
      pid = $1; ppid[pid] = $2; comm[pid] = $3; args = ""
      for (i = 4; i <= NF; i++) args = args " " $i
      cmd[pid] = args; pids[++n] = pid
    }
    END {
      for (k = 1; k <= n; k++) {
        p = pids[k]
        if (comm[p] == "sshd" || comm[p] == "docker-init" || comm[p] == "tini") idle[p] = 1
        if (comm[p] == "java" && cmd[p] ~ /(remoting|agent)\\.jar/) {
          # the remoting JVM and every process that started it (wrapper shells, sshd)
          for (q = p; q in comm && !(q in seen); q = ppid[q]) { seen[q] = 1; idle[q] = 1 }
        }
        if (cmd[p] ~ /\\/dev\\/tcp\\/127\\.0\\.0\\.1\\/22/) probe[p] = 1
      }
      for (k = 1; k <= n; k++) {
        p = pids[k]
        # the health check and its children (head, grep)
        if (p in probe || ppid[p] in probe) idle[p] = 1
        if (!(p in idle)) { print comm[p]; found = 1; exit }
      }
      exit found ? 0 : 1
    }' <<<"$top"
}

# Prints why the host is busy and exits 0, or exits 1 when it is idle.
busy_reason() {
  local names
  if ! names=$(docker ps --format '{{.Names}}' --filter "label=$PLUGIN_LABEL" 2>/dev/null); then
    return 1
  fi
  if [[ -n $names ]]; then echo "per-build agent(s): $(echo $names)"; return 0; fi
  names=$(docker ps --format '{{.Names}}' --filter "label=$BUILD_LABEL" 2>/dev/null)
  if [[ -n $names ]]; then echo "build container(s): $(echo $names)"; return 0; fi
  local agent what
  while IFS= read -r agent; do
    [[ $agent =~ $AGENT_RE ]] || continue
    if what=$(agent_busy "$agent"); then echo "job on $agent ($what)"; return 0; fi
  done < <(docker ps --format '{{.Names}}' 2>/dev/null)
  return 1
}

if [[ \${1:-} == --check ]]; then
  if reason=$(busy_reason); then echo "build running: $reason"; exit 0; fi
  echo idle
  exit 1
fi
if [[ \${1:-} == --check-agent ]]; then
  [[ -n \${2:-} ]] || { echo "usage: $0 --check-agent NAME" >&2; exit 2; }
  if what=$(agent_busy "$2"); then echo "build running: job on $2 ($what)"; exit 0; fi
  echo idle
  exit 1
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--check | --check-agent NAME]" >&2; exit 2; }

holder=""
held_since=0
expired=0
release() {
  # setsid made the holder its own process group: systemd-inhibit and its sleep go together.
  [[ -n $holder ]] && kill -TERM -- "-$holder" 2>/dev/null
  [[ -n $holder ]] && wait "$holder" 2>/dev/null
  holder=""
}
trap 'release; exit 0' TERM INT

while :; do
  now=$(date +%s)
  if [[ -n $holder ]] && ! kill -0 "$holder" 2>/dev/null; then holder=""; fi
  if reason=$(busy_reason); then
    if [[ -z $holder && $expired -eq 0 ]]; then
      # The inhibitor also ends by itself at the limit, should this loop ever stall.
      setsid systemd-inhibit --what=shutdown --mode=block --who="Berth CI build guard" \\
        --why="$reason" sleep "$MAX_HOLD" &
      holder=$!
      held_since=$now
      log "holding the shutdown inhibitor: $reason"
    elif [[ -n $holder ]] && ((now - held_since >= MAX_HOLD)); then
      log "builds have run for $((MAX_HOLD / 3600)) h without a pause; letting go so a pending update can reboot"
      release
      expired=1
    fi
  else
    if [[ -n $holder ]]; then log "host idle: letting go of the shutdown inhibitor"; release; fi
    expired=0
  fi
  sleep "$POLL" &
  wait $!
done
`;
}

/** The inhibitor's service; `binDir` is where the OS keeps local scripts. */
export function renderBuildInhibitUnit(
  binDir: string,
  policy: Pick<HostUpdatePolicy, "maxBuildWaitHours" | "pollSeconds">,
): string {
  return `[Unit]
Description=Berth: delay OS-update reboots while CI builds run
Documentation=https://github.com/coreos/rpm-ostree/issues/2862
Wants=docker.service
After=docker.service

[Service]
Type=simple
Environment=BERTH_MAX_HOLD_SECONDS=${policy.maxBuildWaitHours * 3600}
Environment=BERTH_POLL_SECONDS=${policy.pollSeconds ?? 30}
ExecStart=${binDir}/${BUILD_INHIBIT_SCRIPT}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
`;
}
