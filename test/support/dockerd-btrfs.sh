#!/usr/bin/env bash
# Boot-like stand-in for a Berth host's Docker setup, for tests (needs root).
#
#   dockerd-btrfs.sh start <workdir>   # needs <workdir>/daemon.json
#   dockerd-btrfs.sh stop  <workdir>   # idempotent; safe after a half-finished start
#
# start: makes a sparse loop file, formats it btrfs with the label Ignition would use, mounts it at
# <workdir>/mnt (what var-lib-docker.mount does with /dev/disk/by-label/<label>), creates a private
# bridge so this dockerd never touches docker0, and starts dockerd on <workdir>/docker.sock with
# <workdir>/daemon.json as its --config-file and <workdir>/mnt as its data root.
#
# Environment: BERTH_LABEL (default docker), BERTH_DISK_SIZE (default 1536M),
# BERTH_BRIDGE_CIDR (default 10.213.0.1/24), BERTH_START_TIMEOUT seconds (default 60).
#
# Everything it creates is recorded in <workdir> (loop device, bridge name, pids), and stop only
# removes what that record names.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop <workdir>" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
workdir=$(realpath -m -- "$2")
mnt=$workdir/mnt
sock=$workdir/docker.sock
label=${BERTH_LABEL:-docker}

log() { echo "dockerd-btrfs: $*" >&2; }

# Interface names are at most 15 bytes; derive a stable one from the work directory.
bridge_name() { echo "bt$(printf '%s' "$workdir" | sha256sum | cut -c1-10)"; }

start() {
  [[ -f $workdir/daemon.json ]] || { log "missing $workdir/daemon.json"; exit 1; }
  mkdir -p "$mnt" "$workdir/exec"

  truncate -s "${BERTH_DISK_SIZE:-1536M}" "$workdir/disk.img"
  local loop
  loop=$(losetup --find --show -- "$workdir/disk.img")
  echo "$loop" >"$workdir/loopdev"
  mkfs.btrfs -q -f -L "$label" "$loop" >/dev/null

  # The mount unit finds the volume by label. Other tests may have file systems with the same label,
  # so mount our own device and check that the label really is on it (low-level probe, no cache).
  local found
  found=$(blkid -p -s LABEL -o value "$loop")
  [[ $found == "$label" ]] || { log "label on $loop is '$found', expected '$label'"; exit 1; }
  mount -t btrfs "$loop" "$mnt"

  local br
  br=$(bridge_name)
  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add name "$br" type bridge
    echo "$br" >"$workdir/bridge"
    ip addr add "${BERTH_BRIDGE_CIDR:-10.213.0.1/24}" dev "$br"
    ip link set "$br" up
  fi

  # setsid: dockerd must not die with the test runner's process group before stop runs.
  setsid dockerd \
    --config-file "$workdir/daemon.json" \
    --data-root "$mnt" \
    --exec-root "$workdir/exec" \
    --pidfile "$workdir/dockerd.pid" \
    --bridge "$br" \
    -H "unix://$sock" \
    >"$workdir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$workdir/dockerd.launcher.pid"

  local deadline=$((SECONDS + ${BERTH_START_TIMEOUT:-60}))
  until docker -H "unix://$sock" version >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$workdir/dockerd.launcher.pid")" 2>/dev/null; then
      log "dockerd exited during start; last log lines:"
      tail -n 30 "$workdir/dockerd.log" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "dockerd did not answer within ${BERTH_START_TIMEOUT:-60}s; last log lines:"
      tail -n 30 "$workdir/dockerd.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "dockerd is up on unix://$sock (data root $mnt on $loop)"
}

# Sends TERM, waits up to $2 seconds, then KILL. Only for pids recorded in the work directory.
stop_pid() {
  local pid=$1 wait_s=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + wait_s))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "pid $pid still running after ${wait_s}s, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
}

# Mount points at or below $1, deepest first (mountinfo field 5, octal escapes decoded).
mounts_under() {
  local root=$1
  awk '{print $5}' /proc/self/mountinfo |
    while IFS= read -r target; do
      target=$(printf '%b' "$target")
      if [[ $target == "$root" || $target == "$root"/* ]]; then
        echo "$target"
      fi
    done |
    awk '{print length($0) "\t" $0}' | sort -rn | cut -f2-
}

stop() {
  [[ -d $workdir ]] || return 0
  local pidfile
  for pidfile in "$workdir/dockerd.pid" "$workdir/dockerd.launcher.pid" "$workdir/exec/containerd/containerd.pid"; do
    [[ -f $pidfile ]] && stop_pid "$(cat "$pidfile")" 30
  done

  # Container rootfs/netns mounts live under the exec root and the data root; unmount everything
  # below the work directory, deepest first, the btrfs mount itself last.
  local target pass
  for pass in 1 2 3; do
    local left=0
    while IFS= read -r target; do
      [[ -n $target ]] || continue
      if ! umount "$target" 2>/dev/null; then
        left=1
        ((pass < 3)) || umount -l "$target" 2>/dev/null || log "could not unmount $target"
      fi
    done < <(mounts_under "$workdir")
    ((left == 0)) && break
    sleep 1
  done

  local loop
  while IFS= read -r loop; do
    [[ -n $loop ]] && losetup -d "$loop" 2>/dev/null || true
  done < <(losetup -j "$workdir/disk.img" -O NAME -n 2>/dev/null || true)
  rm -f "$workdir/loopdev"

  if [[ -f $workdir/bridge ]]; then
    local br
    br=$(cat "$workdir/bridge")
    ip link del "$br" 2>/dev/null || true
    rm -f "$workdir/bridge"
  fi

  if [[ -n $(mounts_under "$workdir") ]]; then
    log "mounts left under $workdir:"
    mounts_under "$workdir" >&2
    exit 1
  fi
  log "stopped and cleaned up $workdir"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
