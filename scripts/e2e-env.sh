#!/usr/bin/env bash
# A private Docker engine on btrfs for Berth's end-to-end suite (needs root).
#
#   e2e-env.sh up   <workdir>   # prints the socket path (unix://<workdir>/docker.sock) on stdout
#   e2e-env.sh down <workdir>   # stops it and removes everything it made; safe after a failed up
#   e2e-env.sh restart <workdir> # stops dockerd by its pid and starts it again on the same data
#                                # root (containers come back through their restart policies)
#   e2e-env.sh seed <cache dir>  # prints the path of the seed image for $BERTH_E2E_STORAGE (below),
#                                # making it first when the cache has none for the current stand-ins
#
# Debian packages this needs (CI installs them; this script installs nothing):
#   docker.io btrfs-progs iptables iproute2 util-linux mount
# and, for the stand-in images (images/standins/build.sh): debootstrap
#
# `up` starts dockerd through test/support/dockerd-btrfs.sh on a sparse loop file formatted btrfs,
# with --storage-driver=btrfs, its own data root, exec root, pid file and socket, and (unlike the
# Ignition boot check) with iptables on, so ports published on 127.0.0.1 and user-defined bridge
# networks with static addresses work. Address ranges, all private and chosen not to clash with
# Docker's own defaults on the same machine:
#   default bridge          10.213.8.1/24    (BERTH_E2E_BRIDGE_CIDR)
#   automatic network pool  10.213.64.0/18 in /24s (BERTH_E2E_POOL)
#   static subnets          whatever a test asks for, e.g. Berth's services network 172.30.0.0/24
# `up` is idempotent: when the daemon in <workdir> already answers it only prints the socket.
#
# `down`: removes all containers and networks while the daemon still answers (dockerd then drops
# its own bridges and firewall rules), stops the daemon by its recorded pid, removes what is left
# (see dockerd-btrfs.sh stop: mounts deepest first, loop device, bridges, firewall rules and chains
# that appeared since `up`), then deletes the work directory once nothing is mounted below it.
#
# Seeds: a run starts one engine per test file, and each needs the stand-in images. Loading the
# saved stand-ins (`docker load` of a ~1.1 GB archive) takes 20-35 s per engine; copying a file system
# that already holds them takes a few seconds. `seed` makes such a file system once per stand-in key
# and storage choice, in <cache dir>, under the lock <cache dir>/.seed.lock: it starts an engine on an
# empty disk with default settings, runs images/standins/build.sh (which builds or loads the
# stand-ins), removes what belongs to that one engine while it is stopped (its networks store,
# containers, volumes, engine id where dockerd keeps one, swarm, builder and containerd state,
# temporary files; dockerd makes them anew in each copy), checks the file
# system (btrfs check --readonly / e2fsck -fn) and keeps the loop file as
# seed-<storage>-<key>.img, with seed-<storage>-<key>.ok (its size and mtime) written last. <key>
# covers the stand-ins' key (build.sh --key), the storage choice, BERTH_E2E_DISK_SIZE, the dockerd
# version and this script's seed recipe; seeds of other keys of that storage are deleted.
# `up` with BERTH_E2E_SEED=<seed image> starts the loop file as a copy of it (dockerd-btrfs.sh's
# BERTH_SEED: ~2 s; a btrfs copy gets a file-system id of its own), so build.sh finds the stand-ins
# already there (its have_all check compares their key labels) and loads nothing. When the seed does
# not match its .ok record, or the engine does not start from the copy, `up` says so on stderr, cleans
# up and starts on an empty disk, as without a seed.
#
# Keep <workdir> short (e.g. /tmp/be-XXXX): dockerd puts Unix sockets under it (108-byte limit).
#
# Environment: BERTH_E2E_DISK_SIZE (sparse loop file, default 12G), BERTH_E2E_BRIDGE_CIDR,
# BERTH_E2E_POOL, BERTH_START_TIMEOUT (seconds, default 60), BERTH_E2E_DNS_SEARCH (space-separated
# domains for daemon.json's "dns-search", as a host's Ignition sets it; default none),
# BERTH_E2E_METRICS_ADDR (daemon.json metrics-addr, host:port, e.g. on the default bridge's gateway;
# unset: no metrics endpoint),
# BERTH_E2E_DOCKERD_ARGS (more dockerd flags, split on whitespace, e.g. a TLS endpoint
# "--tlsverify --tlscacert=… --tlscert=… --tlskey=… -H tcp://0.0.0.0:2376" for an engine in a
# network namespace of its own; `restart` reuses them),
# BERTH_E2E_SEED (a seed image from `seed`, for `up`; unset: an empty disk; `up` writes the seed's
# path to <workdir>/seed when the engine did start from it),
# BERTH_E2E_STORAGE (default btrfs): btrfs (--storage-driver=btrfs on a btrfs loop file, what Berth's
# hosts run) or overlay2 (--storage-driver=overlay2 on an ext4 loop file, Docker's default, for
# comparisons such as bench/engine.ts). `up` records the choice in <workdir>/storage and `restart`
# reuses it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dockerd_btrfs=$here/../test/support/dockerd-btrfs.sh
standins_build=$here/../images/standins/build.sh
self=$here/$(basename "${BASH_SOURCE[0]}")

usage() {
  echo "usage: $0 up|down|restart <workdir> | seed <cache dir>" >&2
  exit 2
}
log() { echo "e2e-env: $*" >&2; }

[[ $# -eq 2 ]] || usage
cmd=$1
workdir=$(realpath -m -- "$2")
sock=$workdir/docker.sock

# The storage choice: a file system for the loop file and a storage driver.
storage_env() {
  local storage=$1
  case $storage in
    btrfs) echo "BERTH_FS=btrfs BERTH_DOCKERD_ARGS=--storage-driver=btrfs" ;;
    overlay2) echo "BERTH_FS=ext4 BERTH_DOCKERD_ARGS=--storage-driver=overlay2" ;;
    *)
      log "BERTH_E2E_STORAGE must be btrfs or overlay2, not '$storage'"
      exit 2
      ;;
  esac
}

# BERTH_DOCKERD_ARGS=<the storage choice's flags> <the recorded BERTH_E2E_DOCKERD_ARGS>, as one word.
extra_args() {
  local flags=${1##*BERTH_DOCKERD_ARGS=} more=""
  [[ -f $workdir/dockerd-args ]] && more=$(cat "$workdir/dockerd-args")
  echo "BERTH_DOCKERD_ARGS=$flags${more:+ $more}"
}

answers() { [[ -S $sock ]] && timeout 20 docker -H "unix://$sock" version >/dev/null 2>&1; }

daemon_json() {
  local pool=${BERTH_E2E_POOL:-10.213.64.0/18} search="" dns_search="" d
  for d in ${BERTH_E2E_DNS_SEARCH:-}; do
    [[ $d =~ ^[A-Za-z0-9.-]+$ ]] || { log "BERTH_E2E_DNS_SEARCH: not a domain: '$d'"; exit 2; }
    search+="${search:+, }\"$d\""
  done
  [[ -z $search ]] || dns_search=$'\n'"  \"dns-search\": [$search],"
  cat <<EOF
{
  "iptables": true,
  "ip-forward": true,
  "ip-masq": true,
  "userland-proxy": true,
  "default-address-pools": [{ "base": "$pool", "size": 24 }],
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "3" },$dns_search
  "live-restore": false${BERTH_E2E_METRICS_ADDR:+,
  \"metrics-addr\": \"$BERTH_E2E_METRICS_ADDR\"}
}
EOF
}

up() {
  if ((${#sock} > 100)); then
    log "work directory path too long for a Unix socket: $workdir"
    exit 2
  fi
  if answers; then
    echo "unix://$sock"
    return 0
  fi
  # Leftovers of an earlier, failed or killed run: clean them before starting again.
  if [[ -e $workdir/loopdev || -e $workdir/dockerd.pid || -e $workdir/netfilter || -e $workdir/bridge ]]; then
    log "cleaning up an earlier run in $workdir"
    down
  fi
  local seed=${BERTH_E2E_SEED:-}
  if [[ -n $seed ]] && ! seed_intact "$seed"; then
    log "the seed $seed does not match its record; starting on an empty disk instead"
    seed=""
  fi
  if [[ -n $seed ]]; then
    if start_daemon "$seed"; then
      echo "$seed" >"$workdir/seed"
      echo "unix://$sock"
      return 0
    fi
    log "dockerd did not start from the seed $seed; cleaning up and starting on an empty disk instead"
    down
  fi
  if ! start_daemon ""; then
    log "dockerd did not start; cleaning up"
    down || true
    exit 1
  fi
  echo "unix://$sock"
}

# start_daemon <seed image or "">: the work directory's files and dockerd-btrfs.sh start.
start_daemon() {
  local storage=${BERTH_E2E_STORAGE:-btrfs} choice
  choice=$(storage_env "$storage")
  mkdir -p "$workdir"
  daemon_json >"$workdir/daemon.json"
  echo "$storage" >"$workdir/storage"
  printf '%s' "${BERTH_E2E_DOCKERD_ARGS:-}" >"$workdir/dockerd-args"
  # shellcheck disable=SC2086 # choice is NAME=value words
  env BERTH_LABEL=berth-e2e \
    BERTH_DISK_SIZE=${BERTH_E2E_DISK_SIZE:-12G} \
    BERTH_BRIDGE_CIDR=${BERTH_E2E_BRIDGE_CIDR:-10.213.8.1/24} \
    BERTH_NETFILTER=1 \
    BERTH_SEED="$1" \
    $choice "$(extra_args "$choice")" \
    bash "$dockerd_btrfs" start "$workdir"
}

down() {
  [[ -d $workdir ]] || return 0
  if answers; then
    local d=(timeout 120 docker -H "unix://$sock")
    local ids
    ids=$("${d[@]}" ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086 # one id per word
    [[ -z $ids ]] || "${d[@]}" rm -f -v $ids >/dev/null 2>&1 || log "could not remove every container"
    "${d[@]}" network prune -f >/dev/null 2>&1 || log "could not remove the networks"
  fi
  bash "$dockerd_btrfs" stop "$workdir"
  # dockerd-btrfs.sh stop exits non-zero while anything is still mounted below the work directory,
  # so from here on nothing below it is a mount: deleting it cannot reach another file system.
  if losetup -j "$workdir/disk.img" -O NAME -n 2>/dev/null | grep -q .; then
    log "a loop device still uses $workdir/disk.img; leaving $workdir"
    exit 1
  fi
  rm -rf --one-file-system -- "$workdir"
  log "removed $workdir"
}

restart() {
  [[ -f $workdir/daemon.json ]] || { log "no environment in $workdir"; exit 1; }
  local storage=btrfs choice
  [[ -f $workdir/storage ]] && storage=$(cat "$workdir/storage")
  choice=$(storage_env "$storage")
  # shellcheck disable=SC2086 # choice is NAME=value words
  env BERTH_LABEL=berth-e2e $choice "$(extra_args "$choice")" bash "$dockerd_btrfs" restart "$workdir"
  echo "unix://$sock"
}

# --- seeds -----------------------------------------------------------------------------------------

# "<size> <mtime>" of a file, what <seed>.ok records.
seed_stamp() { stat -c '%s %Y' -- "$1"; }

# True when <seed image> exists and its .ok record (written last by `seed`) still describes it.
seed_intact() {
  local img=$1
  [[ -f $img && -f ${img%.img}.ok ]] && [[ $(cat "${img%.img}.ok") == "$(seed_stamp "$img")" ]]
}

# What goes into a seed and how it is made: the key of the stand-ins, the engine and this recipe.
seed_key() {
  local standins
  standins=$(bash "$standins_build" --key "$cache") || return 1
  {
    echo "seed format 1"
    echo "$standins"
    echo "${BERTH_E2E_STORAGE:-btrfs} ${BERTH_E2E_DISK_SIZE:-12G} berth-e2e"
    dockerd --version
    declare -f make_seed scrub_seed
  } | sha256sum | cut -c1-16
}

# Removes what belongs to the one engine that made the seed from its (stopped) data root at $1.
scrub_seed() {
  local root=$1
  rm -rf --one-file-system -- "$root/network" "$root/swarm" "$root/tmp" "$root/buildkit" "$root/runtimes" \
    "$root/containerd" "$root/engine-id" "$root/volumes"
  # Empty when the daemon stopped (make_seed checked), emptied anyway: no container's state is kept.
  find "$root/containers" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {} +
}

# Makes the seed <cache>/seed-<storage>-<key>.img; $ws is a fresh work directory, cleaned by the caller.
make_seed() {
  local storage=${BERTH_E2E_STORAGE:-btrfs} started key img out n
  started=$(date +%s%N)
  # An engine with default settings, on an empty disk, in this network namespace.
  env -u BERTH_E2E_SEED -u BERTH_E2E_DNS_SEARCH -u BERTH_E2E_METRICS_ADDR -u BERTH_E2E_DOCKERD_ARGS \
    -u BERTH_E2E_BRIDGE_CIDR -u BERTH_E2E_POOL bash "$self" up "$ws" >/dev/null
  bash "$standins_build" "$ws/docker.sock" "$cache" >/dev/null
  key=$(seed_key) || { log "build.sh --key failed after a build"; return 1; }
  local d=(timeout 120 docker -H "unix://$ws/docker.sock")
  # The stand-ins in this engine carry the key build.sh reports (what have_all checks in each copy).
  out=$("${d[@]}" image inspect --format '{{index .Config.Labels "org.berth.standin-key"}}' \
    berth-standin/registry:latest)
  [[ $out == "$(bash "$standins_build" --key "$cache")" ]] ||
    { log "the stand-ins in the seed engine carry key '$out', not build.sh's"; return 1; }
  "${d[@]}" volume prune -f >/dev/null
  n=$("${d[@]}" ps -aq | wc -l)
  ((n == 0)) || { log "the seed engine has $n containers"; return 1; }
  log "seed engine ready in $((($(date +%s%N) - started) / 1000000)) ms; stopping it"
  bash "$dockerd_btrfs" stop "$ws" || { log "could not stop the seed engine"; return 1; }
  # Stopped: dockerd-btrfs.sh unmounted the file system and detached its loop device. Scrub it.
  seed_loop=$(losetup --find --show -- "$ws/disk.img")
  mkdir -p "$ws/scrub"
  mount "$seed_loop" "$ws/scrub"
  scrub_seed "$ws/scrub"
  fstrim "$ws/scrub" >/dev/null 2>&1 || true # freed blocks become holes in the sparse file
  umount "$ws/scrub"
  if [[ $storage == btrfs ]]; then
    btrfs check --readonly "$seed_loop" >"$ws/fsck.log" 2>&1
  else
    e2fsck -fn "$seed_loop" >"$ws/fsck.log" 2>&1
  fi || { log "the seed's file system has errors:"; tail -n 20 "$ws/fsck.log" >&2; return 1; }
  losetup -d "$seed_loop"
  seed_loop=""
  img=$cache/seed-$storage-$key.img
  find "$cache" -maxdepth 1 -name "seed-$storage-*" -delete
  mv -- "$ws/disk.img" "$img.tmp"
  mv -- "$img.tmp" "$img"
  seed_stamp "$img" >"${img%.img}.ok"
  log "made the seed $img in $((($(date +%s%N) - started) / 1000000)) ms ($(du -h "$img" | cut -f1) used)"
}

# EXIT trap of `seed`: releases the scrub mount and loop device, the seed engine and its work directory.
seed_cleanup() {
  local status=$?
  if [[ -n ${seed_loop:-} ]]; then
    umount "$ws/scrub" 2>/dev/null || true
    losetup -d "$seed_loop" 2>/dev/null || true
  fi
  bash "$self" down "$ws" >/dev/null 2>&1 || log "could not clean up $ws"
  ((status == 0)) || log "could not make a seed"
}

seed() {
  cache=$workdir # the argument
  mkdir -p "$cache"
  storage_env "${BERTH_E2E_STORAGE:-btrfs}" >/dev/null
  local fd key img
  exec {fd}>"$cache/.seed.lock"
  flock "$fd"
  if key=$(seed_key 2>/dev/null); then
    img=$cache/seed-${BERTH_E2E_STORAGE:-btrfs}-$key.img
    if seed_intact "$img"; then
      echo "$img"
      return 0
    fi
  fi
  ws=$(mktemp -d /tmp/bs-XXXXXX)
  seed_loop=""
  trap seed_cleanup EXIT
  make_seed # set -e: any failing step ends the script through seed_cleanup
  key=$(seed_key)
  img=$cache/seed-${BERTH_E2E_STORAGE:-btrfs}-$key.img
  seed_intact "$img" || { log "the seed $img is not there after making it"; exit 1; }
  echo "$img"
}

case $cmd in
  up) up ;;
  down) down ;;
  restart) restart ;;
  seed) seed ;;
  *) usage ;;
esac
