#!/usr/bin/env bash
# Boot-like stand-in for a Berth host's Docker setup, for tests (needs root).
#
#   dockerd-btrfs.sh start <workdir>   # needs <workdir>/daemon.json
#   dockerd-btrfs.sh stop  <workdir>   # idempotent; safe after a half-finished start
#   dockerd-btrfs.sh restart <workdir> # stop dockerd by its pid, start it again on the same data root
#
# start: makes a sparse loop file, formats it btrfs with the label Ignition would use, mounts it at
# <workdir>/mnt (what var-lib-docker.mount does with /dev/disk/by-label/<label>), creates a private
# bridge so this dockerd never touches docker0, and starts dockerd on <workdir>/docker.sock with
# <workdir>/daemon.json as its --config-file and <workdir>/mnt as its data root.
#
# Environment: BERTH_LABEL (default docker), BERTH_DISK_SIZE (default 1536M),
# BERTH_BRIDGE_CIDR (default 10.213.0.1/24), BERTH_START_TIMEOUT seconds (default 60),
# BERTH_DOCKERD_ARGS (extra dockerd flags, split on whitespace, e.g. "--storage-driver=btrfs"),
# BERTH_FS (default btrfs): the loop file's file system, btrfs or ext4 (ext4 is for comparisons,
# e.g. overlay2 on ext4 in bench/engine.ts; Berth's hosts use btrfs),
# BERTH_SEED (optional): a file-system image of BERTH_FS (scripts/e2e-env.sh seed makes them) that
# the loop file starts as a copy of (cp --sparse=always) instead of an empty file formatted here:
# btrfs copies get a file-system id of their own (btrfstune -m, which only rewrites the superblocks),
# so two copies mounted at once are two file systems to the kernel whatever its version; ext4 copies
# keep the seed's UUID, which ext4 does not look at when mounting (two copies with one UUID mount and
# work side by side; tune2fs -U would first want an e2fsck -f of every copy). Either gets the label
# BERTH_LABEL. A seed step that fails makes start fail (e2e-env.sh up then falls back to an empty disk),
# BERTH_NETFILTER (default 0): set to 1 when daemon.json lets dockerd manage iptables (published
# ports, NAT). start then snapshots the firewall (iptables-save, ip6tables-save) into <workdir>, and
# stop deletes the rules and chains that appeared since that snapshot and restores the built-in
# chains' policies (dockerd leaves its rules and DOCKER* chains behind when it exits).
#
# IPv4 forwarding: start turns net.ipv4.ip_forward on for the run (a freshly booted machine has it
# off, and dockerd then warns "IPv4 forwarding is disabled" and container networking does not
# work; on a Berth host dockerd turns it on itself). The value before the first start is kept in
# $BERTH_FORWARD_STATE (default /run/berth-dockerd-btrfs) per network namespace, with one entry
# per running work directory; stop removes this work directory's entry and, when it was the last
# one, puts the old value back. Users whose work directory is gone are pruned. Set
# BERTH_IP_FORWARD=keep to leave the sysctl alone.
#
# Everything it creates is recorded in <workdir> (loop device, bridge name, pids, firewall
# snapshot), and stop only removes what that record names. Bridges of user-defined Docker networks
# (br-<id>) are removed by stop only when their network id is in this daemon's own network store;
# containers left running by a daemon that died are killed through runc's state under
# <workdir>/exec and their shims by their exact containerd address, never by name.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|restart <workdir>" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
workdir=$(realpath -m -- "$2")
mnt=$workdir/mnt
sock=$workdir/docker.sock
label=${BERTH_LABEL:-docker}
fs=${BERTH_FS:-btrfs}
case $fs in
  btrfs | ext4) ;;
  *)
    echo "dockerd-btrfs: BERTH_FS must be btrfs or ext4, not '$fs'" >&2
    exit 2
    ;;
esac

log() { echo "dockerd-btrfs: $*" >&2; }

# The forwarding record of this network namespace (the sysctl is per namespace).
forward_dir() {
  local ns
  ns=$(stat -L -c %i /proc/self/ns/net)
  echo "${BERTH_FORWARD_STATE:-/run/berth-dockerd-btrfs}/forward-$ns"
}
forward_sysctl=/proc/sys/net/ipv4/ip_forward

# with_forward_lock <dir> <function>: runs <function> <dir> holding the record's lock (several
# dockerds may start and stop at once).
with_forward_lock() {
  local dir=$1 fd
  mkdir -p "$dir/users"
  exec {fd}>"$dir/lock"
  flock "$fd"
  "$2" "$dir"
  exec {fd}>&-
}

forward_users() {
  local dir=$1 entry
  for entry in "$dir"/users/*; do
    [[ -f $entry ]] || continue
    # A user whose work directory is gone died without stop: drop it.
    if [[ -d $(cat "$entry") ]]; then echo "$entry"; else rm -f "$entry"; fi
  done
}

forward_acquire_locked() {
  local dir=$1
  # Kept from the first start on: a saved value without live users is from a run that died
  # before stop, and is still the value from before any of ours.
  forward_users "$dir" >/dev/null
  [[ -f $dir/saved ]] || cat "$forward_sysctl" >"$dir/saved"
  printf '%s' "$workdir" >"$dir/users/$(printf '%s' "$workdir" | sha256sum | cut -c1-16)"
  echo 1 >"$forward_sysctl"
  echo "$dir" >"$workdir/forwarding"
}

forward_release_locked() {
  local dir=$1
  rm -f "$dir/users/$(printf '%s' "$workdir" | sha256sum | cut -c1-16)"
  if [[ -z $(forward_users "$dir") && -f $dir/saved ]]; then
    cat "$dir/saved" >"$forward_sysctl"
    rm -f "$dir/saved"
    log "net.ipv4.ip_forward restored to $(cat "$forward_sysctl")"
  fi
}

forward_acquire() {
  [[ ${BERTH_IP_FORWARD:-on} == keep ]] && return 0
  with_forward_lock "$(forward_dir)" forward_acquire_locked
}

forward_release() {
  [[ -f $workdir/forwarding ]] || return 0
  # The record of the namespace start ran in (stop may run elsewhere).
  with_forward_lock "$(cat "$workdir/forwarding")" forward_release_locked
  rm -f "$workdir/forwarding"
}

# Interface names are at most 15 bytes; derive a stable one from the work directory.
bridge_name() { echo "bt$(printf '%s' "$workdir" | sha256sum | cut -c1-10)"; }

start() {
  [[ -f $workdir/daemon.json ]] || { log "missing $workdir/daemon.json"; exit 1; }
  mkdir -p "$mnt" "$workdir/exec"

  if [[ -n ${BERTH_SEED:-} ]]; then
    copy_seed
  else
    truncate -s "${BERTH_DISK_SIZE:-1536M}" "$workdir/disk.img"
  fi
  local loop
  loop=$(losetup --find --show -- "$workdir/disk.img")
  echo "$loop" >"$workdir/loopdev"
  if [[ -n ${BERTH_SEED:-} ]]; then
    : # formatted already
  elif [[ $fs == ext4 ]]; then
    mkfs.ext4 -q -F -L "$label" "$loop" >/dev/null
  else
    mkfs.btrfs -q -f -L "$label" "$loop" >/dev/null
  fi

  # The mount unit finds the volume by label. Other tests may have file systems with the same label,
  # so mount our own device and check that the label really is on it (low-level probe, no cache).
  local found
  found=$(blkid -p -s LABEL -o value "$loop")
  [[ $found == "$label" ]] || { log "label on $loop is '$found', expected '$label'"; exit 1; }
  mount -t "$fs" "$loop" "$mnt"

  local br
  br=$(bridge_name)
  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add name "$br" type bridge
    echo "$br" >"$workdir/bridge"
    ip addr add "${BERTH_BRIDGE_CIDR:-10.213.0.1/24}" dev "$br"
    ip link set "$br" up
  fi

  if [[ ${BERTH_NETFILTER:-0} == 1 ]]; then
    netfilter_snapshot
  fi
  forward_acquire

  launch
  log "dockerd is up on unix://$sock (data root $mnt on $loop)"
}

# The loop file as a copy of $BERTH_SEED, with a new file-system id and our label, before any loop
# device shows it to the kernel (udev's btrfs scan registers a device by its id when it appears).
copy_seed() {
  local img=$workdir/disk.img started
  started=$(date +%s%N)
  [[ -f $BERTH_SEED ]] || { log "no seed image $BERTH_SEED"; exit 1; }
  [[ $(blkid -p -s TYPE -o value "$BERTH_SEED" 2>/dev/null) == "$fs" ]] ||
    { log "seed $BERTH_SEED is not a $fs image"; exit 1; }
  cp --sparse=always -- "$BERTH_SEED" "$img"
  if [[ $fs == ext4 ]]; then
    e2label "$img" "$label"
  else
    btrfstune -f -m "$img" >/dev/null
    btrfs filesystem label "$img" "$label"
  fi
  log "disk copied from the seed $BERTH_SEED in $((($(date +%s%N) - started) / 1000000)) ms"
}

# Starts dockerd on the prepared work directory and waits until it answers.
launch() {
  local -a extra=()
  # Word splitting is the documented interface of BERTH_DOCKERD_ARGS.
  # shellcheck disable=SC2206
  [[ -n ${BERTH_DOCKERD_ARGS:-} ]] && extra=(${BERTH_DOCKERD_ARGS})

  # setsid: dockerd must not die with the test runner's process group before stop runs.
  setsid dockerd \
    --config-file "$workdir/daemon.json" \
    --data-root "$mnt" \
    --exec-root "$workdir/exec" \
    --pidfile "$workdir/dockerd.pid" \
    --bridge "$br" \
    -H "unix://$sock" \
    "${extra[@]}" \
    >>"$workdir/dockerd.log" 2>&1 </dev/null &
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
}

# Stops dockerd by its recorded pid (it stops its containers and its containerd) and starts it
# again on the same data root, exec root, bridge and socket: what a daemon restart on a host does.
restart() {
  [[ -f $workdir/daemon.json && -f $workdir/dockerd.pid ]] || { log "no daemon recorded in $workdir"; exit 1; }
  mountpoint -q "$mnt" || { log "$mnt is not mounted"; exit 1; }
  local br
  br=$(bridge_name)
  local pidfile
  for pidfile in "$workdir/dockerd.pid" "$workdir/dockerd.launcher.pid" "$workdir/exec/containerd/containerd.pid"; do
    [[ -f $pidfile ]] && stop_pid "$(cat "$pidfile")" 60
  done
  rm -f "$workdir/dockerd.pid"
  launch
  log "dockerd restarted on unix://$sock (data root $mnt)"
}

# Firewall tools present on this machine, as "table-tool save-tool" pairs.
netfilter_tools() {
  command -v iptables-save >/dev/null 2>&1 && echo "iptables iptables-save"
  command -v ip6tables-save >/dev/null 2>&1 && echo "ip6tables ip6tables-save"
  return 0
}

# Records the firewall as it is before dockerd starts (one file per tool).
netfilter_snapshot() {
  local tool save
  while read -r tool save; do
    "$save" >"$workdir/netfilter.$tool.before" 2>/dev/null || rm -f "$workdir/netfilter.$tool.before"
  done < <(netfilter_tools)
  touch "$workdir/netfilter"
}

# Undoes what appeared in the firewall since netfilter_snapshot: new rules (deleted in reverse
# order), then new chains, then built-in chain policies that changed. Only acts on tables and
# tools that have a snapshot.
netfilter_restore() {
  [[ -f $workdir/netfilter ]] || return 0
  local tool save before
  while read -r tool save; do
    before=$workdir/netfilter.$tool.before
    [[ -f $before ]] || continue
    local now table line
    now=$("$save" 2>/dev/null) || continue
    # Rules: "-A CHAIN spec" lines per table that were not in the snapshot, deleted last-first.
    local -a dels=() chains=() policies=()
    table=""
    while IFS= read -r line; do
      case $line in
        \**) table=${line#\*} ;;
        -A\ *)
          if ! table_has "$before" "$table" "$line"; then dels+=("$table"$'\t'"${line#-A }"); fi
          ;;
        :*)
          local chain=${line%% *} policy
          chain=${chain#:}
          policy=$(echo "$line" | awk '{print $2}')
          if ! table_has_chain "$before" "$table" "$chain"; then
            chains+=("$table"$'\t'"$chain")
          elif [[ $policy != - ]]; then
            local old
            old=$(chain_policy "$before" "$table" "$chain")
            if [[ -n $old && $old != "$policy" ]]; then policies+=("$table"$'\t'"$chain"$'\t'"$old"); fi
          fi
          ;;
      esac
    done <<<"$now"
    local i entry spec
    for ((i = ${#dels[@]} - 1; i >= 0; i--)); do
      entry=${dels[i]}
      table=${entry%%$'\t'*}
      spec=${entry#*$'\t'}
      # The spec comes from *-save output, which quotes arguments with spaces: let eval split it.
      eval "\"\$tool\" -w -t \"\$table\" -D $spec" 2>/dev/null || log "$tool: could not delete -t $table -A $spec"
    done
    for entry in "${chains[@]}"; do
      "$tool" -w -t "${entry%%$'\t'*}" -F "${entry#*$'\t'}" 2>/dev/null || true
    done
    for entry in "${chains[@]}"; do
      "$tool" -w -t "${entry%%$'\t'*}" -X "${entry#*$'\t'}" 2>/dev/null ||
        log "$tool: could not delete chain ${entry#*$'\t'} in table ${entry%%$'\t'*}"
    done
    for entry in "${policies[@]}"; do
      IFS=$'\t' read -r table chain policy <<<"$entry"
      "$tool" -w -t "$table" -P "$chain" "$policy" 2>/dev/null || true
    done
  done < <(netfilter_tools)
  rm -f "$workdir/netfilter" "$workdir"/netfilter.*.before
}

# True when the *-save dump $1 has, in table $2, the exact rule line $3.
table_has() {
  T=$2 L=$3 awk '/^\*/ {cur=substr($0,2)} cur==ENVIRON["T"] && $0==ENVIRON["L"] {found=1} END {exit !found}' "$1"
}
table_has_chain() {
  T=$2 C=$3 awk '/^\*/ {cur=substr($0,2)} cur==ENVIRON["T"] && $1==":"ENVIRON["C"] {found=1} END {exit !found}' "$1"
}
chain_policy() {
  T=$2 C=$3 awk '/^\*/ {cur=substr($0,2)} cur==ENVIRON["T"] && $1==":"ENVIRON["C"] {print $2}' "$1"
}

# Deletes br-<id> bridges of user-defined networks this daemon created. A bridge counts as ours only
# when its id appears in this data root's network store (dockerd does not remove them on exit).
remove_network_bridges() {
  local store=$mnt/network/files/local-kv.db dev
  [[ -f $store ]] || return 0
  while IFS= read -r dev; do
    [[ $dev =~ ^br-([0-9a-f]{12})$ ]] || continue
    if grep -aq -- "${BASH_REMATCH[1]}" "$store"; then
      ip link del "$dev" 2>/dev/null || log "could not delete bridge $dev"
    fi
  done < <(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1)
}

# Containers outlive a daemon that died (or was killed) before stop: their containerd shims keep
# running and keep the file system busy. Kill those of this exec root only: runc's state directory
# under <workdir>/exec names the containers, and a shim is ours when one of its arguments is this
# exec root's containerd socket.
remove_orphan_containers() {
  local root=$workdir/exec/runtime-runc/moby id
  if [[ -d $root ]] && command -v runc >/dev/null 2>&1; then
    for id in "$root"/*; do
      [[ -d $id ]] || continue
      runc --root "$root" delete --force "${id##*/}" >/dev/null 2>&1 || log "runc could not delete ${id##*/}"
    done
  fi
  local address=$workdir/exec/containerd/containerd.sock f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    if tr '\0' '\n' <"$f" 2>/dev/null | grep -qxF -- "$address"; then
      log "stopping leftover shim $pid"
      stop_pid "$pid" 10
    fi
  done
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

  remove_orphan_containers
  # Needs the data root still mounted (the network store lives there).
  remove_network_bridges
  netfilter_restore
  forward_release

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

  # Right after the last unmount the kernel may still hold the device (seen under heavy load: the
  # detach then only marks it autoclear): detach again until nothing uses the file, for up to 10 s.
  local loop try
  for try in $(seq 1 20); do
    local attached=0
    while IFS= read -r loop; do
      [[ -n $loop ]] || continue
      attached=1
      losetup -d "$loop" 2>/dev/null || true
    done < <(losetup -j "$workdir/disk.img" -O NAME -n 2>/dev/null || true)
    ((attached == 0)) && break
    ((try < 20)) && sleep 0.5
  done
  if losetup -j "$workdir/disk.img" -O NAME -n 2>/dev/null | grep -q .; then
    log "a loop device still uses $workdir/disk.img"
  fi
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
  restart) restart ;;
  *) usage ;;
esac
