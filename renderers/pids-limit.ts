/**
 * Process-count (pids) limits for every container of a host (pure: same input, same bytes).
 *
 * Neither the Pulumi Docker provider (@pulumi/docker 5.2.0's Container has no pidsLimit) nor the
 * Jenkins Docker plugin's template (DockerTemplateBase has no pids setter) can give a container a
 * pids limit, and dockerd has no daemon-wide default for one (moby/moby#43056 asks for it, open).
 * So each container Berth creates carries its limit in the label {@link PIDS_LIMIT_LABEL}
 * (components/docker-host.ts `limitArgs`; the plugin template's `extraDockerLabelsString`,
 * renderers/casc.ts), and a host service, `berth-pids-limit`, applies it:
 *
 * - it follows `docker events` for containers' `create` and `start` and runs
 *   `docker update --pids-limit N` on each: N from the label; a container without the label keeps a
 *   positive limit it was given (`docker run --pids-limit`, berth-holder's copy of its template's)
 *   and otherwise gets the host default (`berth:limits.defaultPids`): the containers a job starts;
 * - at its own start it goes over every container, running or not, before following the events
 *   (which it reads from a second before that sweep: nothing created meanwhile is missed), so a
 *   restart of the service or of dockerd (live-restore keeps containers running) leaves none out.
 *
 * A limit set with `docker update` is stored with the container: after a reboot its containers
 * start with it. A container created and started at once is unlimited for as long as the service
 * takes to handle its event (a `docker inspect` and a `docker update`: 0.1–0.4 s measured on a
 * loaded 2-core machine); one created and started later starts limited (its `create` event):
 * in that window only its memory limit bounds a fork bomb (cgroup v2 counts the tasks' kernel
 * memory against it). Lowering pids.max below the current count kills nothing: it refuses new
 * tasks, so a fork bomb started in the window stops growing once the limit is applied.
 */

import { RenderError } from "./common.ts";

/** The label with a container's pids limit (config/limits.ts re-exports it). */
export const PIDS_LIMIT_LABEL = "org.berth.pids-limit";
/** The script, in the OS profile's script directory. */
export const PIDS_LIMIT_SCRIPT = "berth-pids-limit";
/** Its systemd unit (enabled). */
export const PIDS_LIMIT_UNIT = "berth-pids-limit.service";

/** The script: `BERTH_PIDS_DEFAULT` is the limit of containers without the label. */
export function renderPidsLimitScript(): string {
  return `#!/bin/bash
# ${PIDS_LIMIT_SCRIPT}: process-count (pids) limits for every container of this host's dockerd
# (Berth, renderers/pids-limit.ts). A container labelled ${PIDS_LIMIT_LABEL}=N gets
# \`docker update --pids-limit N\` when it is created and when it starts; one without the label keeps
# a positive limit of its own and otherwise gets BERTH_PIDS_DEFAULT (those a job starts itself).
# At start, every existing container is handled first; then docker events, read from a second
# before that sweep. Exits when the event stream ends (dockerd stopped): systemd restarts it.
set -euo pipefail

readonly LABEL=${PIDS_LIMIT_LABEL}
default=\${BERTH_PIDS_DEFAULT:-}
log() { echo "${PIDS_LIMIT_SCRIPT}: $*" >&2; }
if [[ ! $default =~ ^[1-9][0-9]*$ ]]; then
  log "BERTH_PIDS_DEFAULT must be a positive integer, not '$default'"
  exit 2
fi

# One container, by ID. Never fails: a container removed meanwhile is not an error.
apply() {
  local id=$1 info want have name why
  info=$(docker inspect --type container \\
    --format "{{.HostConfig.PidsLimit}}|{{.Name}}|{{index .Config.Labels \\"$LABEL\\"}}" "$id" 2>/dev/null) ||
    return 0
  # The label last: read gives the last name the rest of the line, whatever it holds.
  IFS='|' read -r have name want <<<"$info"
  name=\${name#/}
  if [[ -n $want ]]; then
    why="label $LABEL"
    if [[ ! $want =~ ^[1-9][0-9]*$ ]]; then
      log "$name: label $LABEL=$want is not a positive integer; it gets the default"
      want=$default
      why="default, bad label"
    fi
  elif [[ $have =~ ^[1-9][0-9]*$ ]]; then
    return 0
  else
    want=$default
    why="default"
  fi
  [[ $have != "$want" ]] || return 0
  if docker update --pids-limit "$want" "$id" >/dev/null 2>&1; then
    log "$name: pids limit $want ($why)"
  elif docker inspect --type container "$id" >/dev/null 2>&1; then
    log "$name: docker update --pids-limit $want failed"
  fi
}

since=$(($(date +%s) - 1))
if ! ids=$(docker ps --all --quiet --no-trunc); then
  log "dockerd does not answer"
  exit 1
fi
n=0
for id in $ids; do
  apply "$id"
  n=$((n + 1))
done
exec 3< <(exec docker events --since "$since" --filter type=container --filter event=create \\
  --filter event=start --format '{{.Actor.ID}}')
events=$!
trap 'kill "$events" 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT
log "swept $n containers (default $default); following docker events"
while IFS= read -r id <&3; do
  [[ -z $id ]] || apply "$id"
done
log "the docker event stream ended"
exit 1
`;
}

/** The service, started after dockerd and restarted whenever it exits. */
export function renderPidsLimitUnit(binDir: string, defaultPids: number): string {
  if (!Number.isInteger(defaultPids) || defaultPids < 1)
    throw new RenderError("pids-limit", "defaultPids", `${String(defaultPids)} is not a positive integer`);
  return `[Unit]
Description=Berth: process-count limits of containers (label ${PIDS_LIMIT_LABEL}, else ${defaultPids})
Wants=docker.service
After=docker.service

[Service]
Type=simple
Environment=BERTH_PIDS_DEFAULT=${defaultPids}
ExecStart=${binDir}/${PIDS_LIMIT_SCRIPT}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}
