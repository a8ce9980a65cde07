#!/usr/bin/env bash
# A private Docker engine on btrfs for Berth's end-to-end suite (needs root).
#
#   e2e-env.sh up   <workdir>   # prints the socket path (unix://<workdir>/docker.sock) on stdout
#   e2e-env.sh down <workdir>   # stops it and removes everything it made; safe after a failed up
#   e2e-env.sh restart <workdir> # stops dockerd by its pid and starts it again on the same data
#                                # root (containers come back through their restart policies)
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
# BERTH_E2E_STORAGE (default btrfs): btrfs (--storage-driver=btrfs on a btrfs loop file, what Berth's
# hosts run) or overlay2 (--storage-driver=overlay2 on an ext4 loop file, Docker's default, for
# comparisons such as bench/engine.ts). `up` records the choice in <workdir>/storage and `restart`
# reuses it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dockerd_btrfs=$here/../test/support/dockerd-btrfs.sh

usage() {
  echo "usage: $0 up|down|restart <workdir>" >&2
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
  local storage=${BERTH_E2E_STORAGE:-btrfs} choice
  choice=$(storage_env "$storage")
  mkdir -p "$workdir"
  daemon_json >"$workdir/daemon.json"
  echo "$storage" >"$workdir/storage"
  printf '%s' "${BERTH_E2E_DOCKERD_ARGS:-}" >"$workdir/dockerd-args"
  # shellcheck disable=SC2086 # choice is NAME=value words
  if ! env BERTH_LABEL=berth-e2e \
    BERTH_DISK_SIZE=${BERTH_E2E_DISK_SIZE:-12G} \
    BERTH_BRIDGE_CIDR=${BERTH_E2E_BRIDGE_CIDR:-10.213.8.1/24} \
    BERTH_NETFILTER=1 \
    $choice "$(extra_args "$choice")" \
    bash "$dockerd_btrfs" start "$workdir"; then
    log "dockerd did not start; cleaning up"
    down || true
    exit 1
  fi
  echo "unix://$sock"
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

case $cmd in
  up) up ;;
  down) down ;;
  restart) restart ;;
  *) usage ;;
esac
