/**
 * Disk upkeep on every host: scripts and systemd timers that prune Docker, clean old agent
 * workspaces, scrub and balance the btrfs volume (btrfs hosts only: an overlay2 host's ext4 volume
 * needs neither, so those units are not rendered there), cap the journal and warn when space (and,
 * on overlay2 hosts, inodes) runs low. Pure: same input, same bytes.
 *
 * What the Docker prune never removes:
 * - running containers, and stopped containers that have a restart policy (Berth's own services,
 *   `unless-stopped`): only containers without one (builds, one-off runs) are pruned;
 * - images used by any container, running or stopped, and images labelled {@link KEEP_LABEL}. Every
 *   image Berth's program pins backs one of its containers, so it is in use. No list of pinned
 *   images is rendered into Ignition on purpose: that list would change with every image bump, and a
 *   change to Ignition replaces the servers;
 * - named volumes, and any volume a container (running or stopped) uses: only dangling anonymous
 *   volumes (64-hex names) are removed, so the agents' work volumes stay; their old workspaces are
 *   cleaned inside them instead.
 */
import { AGENT_NAME_PATTERN, BUILD_INHIBIT_SCRIPT } from "./updates.ts";
import { RenderError } from "./common.ts";

/** Images carrying this label are never pruned (set it in a Dockerfile: `LABEL org.berth.keep=true`). */
export const KEEP_LABEL = "org.berth.keep";

/** Ages and thresholds of the upkeep (stack settings `hosts.upkeep`). */
export interface HostUpkeepSettings {
  /** Stopped containers (without restart policy) that finished longer ago than this are removed. */
  containerMaxAgeHours: number;
  /** Images no container uses, created longer ago than this, are removed. */
  imageMaxAgeHours: number;
  /** Build cache kept at most (GiB); the least recently used goes first. */
  buildCacheMaxGiB: number;
  /** Agent workspaces (`workspace/<job>` in `jenkins-agent-<n>-work`) untouched this long are removed. */
  workspaceMaxAgeDays: number;
  /** The free-space check warns below this share of free space (percent). */
  freeSpaceWarnPercent: number;
  /** journald's `SystemMaxUse`, e.g. `1G`. */
  journalMaxUse: string;
  /** Weekly balance: data chunks at most this full (percent) are rewritten. */
  balanceDataUsage: number;
  /** Weekly balance: metadata chunks at most this full (percent) are rewritten. */
  balanceMetadataUsage: number;
}

export const UPKEEP_DEFAULTS: HostUpkeepSettings = {
  containerMaxAgeHours: 24,
  imageMaxAgeHours: 72,
  buildCacheMaxGiB: 10,
  workspaceMaxAgeDays: 7,
  freeSpaceWarnPercent: 15,
  journalMaxUse: "1G",
  balanceDataUsage: 50,
  balanceMetadataUsage: 30,
};

/** Calendar expressions of the timers (local time of the host). */
export const UPKEEP_SCHEDULES = {
  /** Every night; builds are few and the prune only ever touches what no container uses. */
  dockerUpkeep: "*-*-* 03:30:00",
  /** Every Sunday morning. */
  btrfsBalance: "Sun *-*-* 05:00:00",
  /** The first Sunday of the month (a scrub reads every block; the weekend is quiet). */
  btrfsScrub: "Sun *-*-01..07 06:00:00",
  /** Every hour. */
  diskCheck: "*-*-* *:05:00",
} as const;

export const DOCKER_UPKEEP_SCRIPT = "berth-docker-upkeep";
export const BTRFS_MAINTENANCE_SCRIPT = "berth-btrfs-maintenance";
export const DISK_CHECK_SCRIPT = "berth-disk-check";
export const JOURNALD_DROPIN_PATH = "/etc/systemd/journald.conf.d/50-berth.conf";

/**
 * `berth-docker-upkeep [--now EPOCH] [--container-max-age-hours N] [--image-max-age-hours N]
 * [--build-cache-max-bytes N] [--workspace-max-age-days N]`: prunes the local Docker and cleans old
 * agent workspaces; prints one line per thing removed. `--now` is the time ages count from (tests).
 */
export function renderDockerUpkeepScript(): string {
  return `#!/bin/bash
# Berth: prune what CI leaves behind on this host's Docker, and old agent workspaces.
# Never removed: running containers, stopped containers with a restart policy (Berth's services),
# images any container uses (running or stopped), images labelled ${KEEP_LABEL}, named volumes.
set -euo pipefail

now=$(date +%s)
container_age_h=24
image_age_h=72
cache_bytes=$((10 * 1024 * 1024 * 1024))
workspace_age_d=7
while [[ $# -gt 0 ]]; do
  case $1 in
    --now) now=$2 ;;
    --container-max-age-hours) container_age_h=$2 ;;
    --image-max-age-hours) image_age_h=$2 ;;
    --build-cache-max-bytes) cache_bytes=$2 ;;
    --workspace-max-age-days) workspace_age_d=$2 ;;
    *) echo "usage: $0 [--now EPOCH] [--container-max-age-hours N] [--image-max-age-hours N] [--build-cache-max-bytes N] [--workspace-max-age-days N]" >&2; exit 2 ;;
  esac
  [[ \${2:-} =~ ^[0-9]+$ ]] || { echo "$1 needs a non-negative integer" >&2; exit 2; }
  shift 2
done

log() { echo "berth-docker-upkeep: $*"; }
to_epoch() { date -d "$1" +%s 2>/dev/null || echo 0; }
failed=0

# 1. Stopped containers without a restart policy that finished before the cutoff; their anonymous
#    volumes go with them (-v), named volumes stay.
cutoff=$((now - container_age_h * 3600))
while IFS=' ' read -r id finished created policy name; do
  [[ -n $id ]] || continue
  [[ $policy == no || -z $policy ]] || continue
  t=$(to_epoch "$finished")
  ((t > 0)) || t=$(to_epoch "$created")
  if ((t > 0 && t < cutoff)); then
    if docker rm -v "$id" >/dev/null; then log "removed container \${name#/}"; else failed=1; fi
  fi
done < <(docker ps -aq --no-trunc --filter status=exited --filter status=created --filter status=dead |
  xargs -r docker inspect --format '{{.Id}} {{.State.FinishedAt}} {{.Created}} {{.HostConfig.RestartPolicy.Name}} {{.Name}}')

# 2. Anonymous volumes (64-hex names) no container uses, running or stopped. Listed explicitly, not
#    with \`docker volume prune\`: before Docker 23 that also removed unused named volumes.
while IFS= read -r volume; do
  [[ $volume =~ ^[0-9a-f]{64}$ ]] || continue
  if docker volume rm "$volume" >/dev/null; then log "removed anonymous volume $volume"; else failed=1; fi
done < <(docker volume ls -q --filter dangling=true)

# 3. Images no container uses, created before the cutoff, without the keep label.
cutoff=$((now - image_age_h * 3600))
docker image prune -a -f --filter "until=$cutoff" --filter "label!=${KEEP_LABEL}" |
  sed -n 's/^\\(untagged\\|deleted\\): /removed image /Ip' | while IFS= read -r line; do log "$line"; done || failed=1

# 4. Build cache beyond the size limit (least recently used first).
docker builder prune -f --keep-storage "$cache_bytes" >/dev/null 2>&1 || log "build cache: nothing to prune or no BuildKit"

# 5. Agent workspaces untouched since the cutoff, on agents that run no job now.
cutoff=$((now - workspace_age_d * 86400))
inhibit=$(dirname "$(readlink -f "$0")")/${BUILD_INHIBIT_SCRIPT}
while IFS= read -r volume; do
  agent=\${volume%-work}
  [[ $agent =~ ${AGENT_NAME_PATTERN} ]] || continue
  if [[ -x $inhibit ]] && "$inhibit" --check-agent "$agent" >/dev/null 2>&1; then
    log "skipped the workspaces of $agent: a job runs there"
    continue
  fi
  mp=$(docker volume inspect --format '{{.Mountpoint}}' "$volume") || { failed=1; continue; }
  [[ -d $mp/workspace ]] || continue
  while IFS= read -r -d '' dir; do
    if rm -rf -- "$dir"; then log "removed workspace $agent:\${dir#"$mp"/}"; else failed=1; fi
  done < <(find "$mp/workspace" -mindepth 1 -maxdepth 1 -type d ! -newermt "@$cutoff" -print0)
done < <(docker volume ls -q --filter name=jenkins-agent-)

exit "$failed"
`;
}

/** `berth-btrfs-maintenance scrub|balance MOUNTPOINT [DATA_USAGE METADATA_USAGE]`. */
export function renderBtrfsMaintenanceScript(): string {
  return `#!/bin/bash
# Berth: btrfs upkeep of the Docker volume.
#   scrub MOUNTPOINT                  read and verify every block (checksums), repair from copies
#   balance MOUNTPOINT DUSAGE MUSAGE  rewrite only data/metadata chunks at most D%/M% full, which
#                                     hands their space back to the unallocated pool (btrfs frees
#                                     space late, moby#27653); a full balance would rewrite everything
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 scrub|balance MOUNTPOINT [DUSAGE MUSAGE]" >&2; exit 2; }
mnt=$2
[[ $(stat -f -c %T "$mnt") == btrfs ]] || { echo "$mnt is not a btrfs file system" >&2; exit 1; }
case $1 in
  scrub)
    btrfs scrub start -B "$mnt"
    ;;
  balance)
    d=\${3:-50}
    m=\${4:-30}
    [[ $d =~ ^[0-9]+$ && $m =~ ^[0-9]+$ ]] || { echo "usage filters must be percentages" >&2; exit 2; }
    btrfs balance start -dusage="$d" -musage="$m" "$mnt"
    btrfs filesystem usage -T "$mnt" | sed -n '1,12p'
    ;;
  *)
    echo "usage: $0 scrub|balance MOUNTPOINT [DUSAGE MUSAGE]" >&2
    exit 2
    ;;
esac
`;
}

/**
 * `berth-disk-check PERCENT MOUNTPOINT...`: warns (priority warning, exit 1) below PERCENT free
 * space. With `inodes` (overlay2 hosts, whose Docker volume is ext4: a fixed number of inodes, which
 * many small files can exhaust with space left) it also warns below PERCENT free inodes on every
 * mount point that reports an inode count. btrfs allocates inodes as needed and reports none, so a
 * btrfs host's script checks space only (and stays byte for byte what it was).
 */
export function renderDiskCheckScript(options: { inodes: boolean } = { inodes: false }): string {
  const header = options.inodes
    ? `# Berth: warn when a file system runs low on free space, or on free inodes where it has a fixed
# number of them (ext4; btrfs reports 0 and never runs out). Exit 1 (the unit shows as failed) when
# any mount point is below PERCENT free.`
    : `# Berth: warn when a file system runs low on free space. Exit 1 (the unit shows as failed) when any
# mount point has less than PERCENT free.`;
  const inodeCheck = options.inodes
    ? `
  read -r inodes ifree < <(df -P -i "$mnt" | awk 'NR == 2 { print $2, $4 }')
  [[ \${inodes:-0} =~ ^[0-9]+$ && $inodes -gt 0 ]] || continue
  ifree_pct=$((ifree * 100 / inodes))
  if ((ifree_pct < threshold)); then
    echo "<4>LOW FREE INODES on $mnt: $ifree_pct% free ($ifree of $inodes), below the $threshold% threshold; prune (berth-docker-upkeep): many small files use up the inodes before the space"
    low=1
  else
    echo "berth-disk-check: $mnt has $ifree_pct% of its inodes free ($ifree of $inodes)"
  fi`
    : "";
  return `#!/bin/bash
${header}
set -euo pipefail
[[ $# -ge 2 && $1 =~ ^[0-9]+$ ]] || { echo "usage: $0 PERCENT MOUNTPOINT..." >&2; exit 2; }
threshold=$1
shift
low=0
for mnt in "$@"; do
  read -r size avail < <(df -P -k "$mnt" | awk 'NR == 2 { print $3 + $4, $4 }')
  if [[ -z \${size:-} || $size -eq 0 ]]; then echo "<4>berth-disk-check: cannot read the size of $mnt"; low=1; continue; fi
  free=$((avail * 100 / size))
  if ((free < threshold)); then
    # <4>: journald stores this line with priority "warning".
    echo "<4>LOW DISK SPACE on $mnt: $free% free ($((avail / 1024)) MiB), below the $threshold% threshold; prune (berth-docker-upkeep) or grow the volume"
    low=1
  else
    echo "berth-disk-check: $mnt has $free% free ($((avail / 1024)) MiB)"
  fi${inodeCheck}
done
exit "$low"
`;
}

/** One unit file, by name. */
export interface RenderedUnit {
  name: string;
  contents: string;
  /** Enabled at boot (timers and the long-running services). */
  enabled: boolean;
}

function timer(description: string, calendar: string, randomizedDelay: string): string {
  return `[Unit]
Description=${description}

[Timer]
OnCalendar=${calendar}
RandomizedDelaySec=${randomizedDelay}
Persistent=true

[Install]
WantedBy=timers.target
`;
}

/**
 * The upkeep units: oneshot services and their timers. With `btrfs` false (an overlay2 host, whose
 * Docker volume is ext4) the btrfs balance and scrub are left out: there is nothing to balance, and
 * ext4 keeps no data checksums to scrub.
 */
export function renderUpkeepUnits(
  binDir: string,
  dataRoot: string,
  s: HostUpkeepSettings,
  options: { btrfs: boolean } = { btrfs: true },
): RenderedUnit[] {
  const gib = 1024 * 1024 * 1024;
  const oneshot = (description: string, exec: string, extra: string[] = []) =>
    [
      "[Unit]",
      `Description=${description}`,
      ...extra,
      "",
      "[Service]",
      "Type=oneshot",
      "Nice=10",
      "IOSchedulingClass=idle",
      `ExecStart=${exec}`,
      "",
    ].join("\n");
  const onDocker = ["Requires=docker.service", "After=docker.service"];
  const onVolume = [`RequiresMountsFor=${dataRoot}`, `ConditionPathIsMountPoint=${dataRoot}`];
  const btrfsUnits: RenderedUnit[] = [
    {
      name: "berth-btrfs-balance.service",
      enabled: false,
      contents: oneshot(
        "Berth: usage-filtered btrfs balance of the Docker volume",
        `${binDir}/${BTRFS_MAINTENANCE_SCRIPT} balance ${dataRoot} ${s.balanceDataUsage} ${s.balanceMetadataUsage}`,
        onVolume,
      ),
    },
    {
      name: "berth-btrfs-balance.timer",
      enabled: true,
      contents: timer("Berth: weekly btrfs balance", UPKEEP_SCHEDULES.btrfsBalance, "30min"),
    },
    {
      name: "berth-btrfs-scrub.service",
      enabled: false,
      contents: oneshot(
        "Berth: btrfs scrub of the Docker volume",
        `${binDir}/${BTRFS_MAINTENANCE_SCRIPT} scrub ${dataRoot}`,
        onVolume,
      ),
    },
    {
      name: "berth-btrfs-scrub.timer",
      enabled: true,
      contents: timer("Berth: monthly btrfs scrub", UPKEEP_SCHEDULES.btrfsScrub, "30min"),
    },
  ];
  return [
    {
      name: "berth-docker-upkeep.service",
      enabled: false,
      contents: oneshot(
        "Berth: prune old containers, images, build cache and agent workspaces",
        `${binDir}/${DOCKER_UPKEEP_SCRIPT} --container-max-age-hours ${s.containerMaxAgeHours} --image-max-age-hours ${s.imageMaxAgeHours} --build-cache-max-bytes ${s.buildCacheMaxGiB * gib} --workspace-max-age-days ${s.workspaceMaxAgeDays}`,
        onDocker,
      ),
    },
    {
      name: "berth-docker-upkeep.timer",
      enabled: true,
      contents: timer("Berth: nightly Docker prune", UPKEEP_SCHEDULES.dockerUpkeep, "30min"),
    },
    ...(options.btrfs ? btrfsUnits : []),
    {
      name: "berth-disk-check.service",
      enabled: false,
      contents: oneshot(
        "Berth: warn when free disk space runs low",
        `${binDir}/${DISK_CHECK_SCRIPT} ${s.freeSpaceWarnPercent} ${dataRoot} /`,
      ),
    },
    {
      name: "berth-disk-check.timer",
      enabled: true,
      contents: timer("Berth: hourly free-space check", UPKEEP_SCHEDULES.diskCheck, "5min"),
    },
  ];
}

/** The journald drop-in: a cap on the persistent journal. */
export function renderJournaldDropin(s: Pick<HostUpkeepSettings, "journalMaxUse">): string {
  if (!/^[1-9]\d*[KMG]$/.test(s.journalMaxUse)) {
    throw new RenderError(
      "renderJournaldDropin",
      "journalMaxUse",
      `must look like "1G" or "500M", got "${s.journalMaxUse}"`,
    );
  }
  return `# Berth: cap the journal; CI hosts log a lot.\n[Journal]\nSystemMaxUse=${s.journalMaxUse}\n`;
}
