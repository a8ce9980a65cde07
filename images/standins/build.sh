#!/usr/bin/env bash
# Builds Berth's stand-in images from Debian packages (nothing can be pulled from a registry here).
#
#   images/standins/build.sh <docker socket> <cache dir>
#   images/standins/build.sh --key <cache dir>   # prints the key of the stand-ins it would build or
#                                                # load, builds nothing; fails when the base tarball
#                                                # is missing or stale (scripts/e2e-env.sh seed)
#
# <docker socket>: a path or unix:// URL. <cache dir>: kept between runs; holds
#   bookworm-minbase.tar      the debootstrap'ed root file system (built once, ~1 min)
#   standins-<key>.tar        `docker save` of the base and every stand-in, keyed by the base tarball's and this
#                             directory's content, loaded instead of rebuilt when the key matches
#
# Steps: debootstrap --variant=minbase bookworm from the mirror apt uses on this machine (or
# $BERTH_DEBIAN_MIRROR), with apt's sources for bookworm* copied into the image; `docker import` as
# berth-standin/base:bookworm; then `docker build --network host` of each <name>/Dockerfile, tagged
# berth-standin/<name>:latest, $BERTH_STANDIN_JOBS (default 2) at a time, every failed build's log tail
# printed at the end. The builds run in the host's network namespace, so their apt-get
# reaches the mirror exactly as the host's apt does, whatever the daemon's bridge/NAT setup.
#
# Needs root, debootstrap, tar and a docker CLI. Prints the stand-ins' tags, one per line (the base,
# berth-standin/base:bookworm, is loaded too but not printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAMES=(registry nginx jenkins-agent redis dnsmasq holder mongodb node-exporter postgres)
# The same, longest build first (measured cold on the 2-core CI machine: jenkins-agent 110 s, postgres
# 56 s, nginx 35 s, ...), so the last build to start is a short one.
BUILD_ORDER=(jenkins-agent postgres nginx mongodb node-exporter registry redis dnsmasq holder)
BASE_TAG=berth-standin/base:bookworm

[[ $# -eq 2 ]] || {
  echo "usage: $0 <docker socket> <cache dir>" >&2
  exit 2
}
host=$1
key_only=0
if [[ $host == --key ]]; then
  key_only=1
elif [[ $host != unix://* ]]; then
  host=unix://$(realpath -m -- "$host")
fi
cache=$(realpath -m -- "$2")
mkdir -p "$cache"

log() { echo "standins: $*" >&2; }
d() { docker -H "$host" "$@"; }
export DOCKER_BUILDKIT=0 # the classic builder: no buildx plugin needed, --network host works

# One build at a time per cache directory.
exec 9>"$cache/.lock"
flock 9

# --- apt sources ---------------------------------------------------------------------------------
# "uri suite components…" for every Debian bookworm* source apt uses here (one-line and deb822).
apt_sources() {
  {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } s=$i; for (j=i+1; j<=NF; j++) s=s" "$j; print s }'
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f $f ]] || continue
      awk '
        function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n=split(uris,u," "); m=split(suites,s," "); for (a=1;a<=n;a++) for (b=1;b<=m;b++) print u[a], s[b], comps } types=uris=suites=comps=enabled="" }
        /^[[:space:]]*$/ { flush(); next }
        /^[[:space:]]*#/ { next }
        { key=tolower($1); sub(/:$/,"",key); $1=""; sub(/^ /,""); val=$0 }
        key=="types" {types=val} key=="uris" {uris=val} key=="suites" {suites=val} key=="components" {comps=val} key=="enabled" {enabled=tolower(val)}
        END { flush() }' "$f"
    done
  } | awk '$2 ~ /^bookworm(-updates|-security|\/updates)?$/' | sort -u
}

mirror() {
  if [[ -n ${BERTH_DEBIAN_MIRROR:-} ]]; then
    echo "$BERTH_DEBIAN_MIRROR"
    return
  fi
  apt_sources | awk '$2=="bookworm" {print $1; exit}'
}

# --- base root file system -------------------------------------------------------------------------
base_tar=$cache/bookworm-minbase.tar
make_base_tar() {
  local mirror_url sources rootfs
  mirror_url=$(mirror)
  [[ -n $mirror_url ]] || {
    log "no bookworm mirror in apt's sources; set BERTH_DEBIAN_MIRROR"
    exit 1
  }
  sources=$(apt_sources)
  [[ -n $sources ]] || sources="$mirror_url bookworm main"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf --one-file-system -- "$rootfs"' EXIT
  log "debootstrap --variant=minbase bookworm from $mirror_url (first run only)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror_url" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 30 "$cache/debootstrap.log" >&2
    exit 1
  }
  # apt in the image uses the same sources as the host (bookworm, -updates, -security).
  awk '{ printf "deb %s %s", $1, $2; for (i=3;i<=NF;i++) printf " %s", $i; print "" }' <<<"$sources" \
    >"$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/apt.conf.d/90berth-standin" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
Dpkg::Use-Pty "false";
Binary::apt::APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
CONF
  # Like the official debian images: no docs or man pages, no services started by postinst scripts.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90berth-nodoc" <<'CONF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CONF
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs/debootstrap"
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/etc/hostname"
  chmod 0755 "$rootfs" # mktemp made it 0700; tar records it as the image's /
  # Device nodes and kernel file systems come from the container runtime.
  tar -C "$rootfs" --numeric-owner --xattrs --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$base_tar.tmp" .
  sha256sum "$base_tar.tmp" | cut -d' ' -f1 >"$base_tar.sha256"
  echo "$recipe" >"$base_tar.recipe"
  mv "$base_tar.tmp" "$base_tar"
  rm -rf --one-file-system -- "$rootfs"
  trap - EXIT
}

# The tarball is rebuilt when how it is made changes (this function or apt's sources).
recipe=$( {
  declare -f make_base_tar
  apt_sources
  echo "${BERTH_DEBIAN_MIRROR:-}"
} | sha256sum | cut -c1-16)
if [[ ! -f $base_tar || ! -f $base_tar.sha256 || $(cat "$base_tar.recipe" 2>/dev/null) != "$recipe" ]]; then
  if ((key_only)); then
    log "no current base tarball in $cache: no key yet"
    exit 1
  fi
  make_base_tar
fi
base_sum=$(cat "$base_tar.sha256")

# Key of this build: the base tarball plus every file in this directory that goes into an image.
key=$( {
  echo "format 2: base saved too"
  echo "$base_sum"
  cd "$here" && find "${NAMES[@]}" -type f -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
if ((key_only)); then
  echo "$key"
  exit 0
fi

have_all() {
  local name label
  label=$(d image inspect --format '{{index .Config.Labels "org.berth.base-sha256"}}' "$BASE_TAG" 2>/dev/null) ||
    return 1
  [[ $label == "$base_sum" ]] || return 1
  for name in "${NAMES[@]}"; do
    label=$(d image inspect --format '{{index .Config.Labels "org.berth.standin-key"}}' \
      "berth-standin/$name:latest" 2>/dev/null) || return 1
    [[ $label == "$key" ]] || return 1
  done
}

if have_all; then
  log "stand-ins already in this daemon (key $key)"
elif [[ -f $cache/standins-$key.tar ]]; then
  log "loading cached stand-ins (key $key)"
  d load -q -i "$cache/standins-$key.tar" >/dev/null
else
  if ! d image inspect "$BASE_TAG" >/dev/null 2>&1 ||
    [[ $(d image inspect --format '{{index .Config.Labels "org.berth.base-sha256"}}' "$BASE_TAG") != "$base_sum" ]]; then
    log "importing $BASE_TAG"
    d import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL org.berth.base-sha256=$base_sum" \
      --change 'CMD ["bash"]' \
      "$base_tar" "$BASE_TAG" >/dev/null
  fi
  # Two builds at a time ($BERTH_STANDIN_JOBS): they are independent (each FROM the base) and spend
  # much of their time in apt's downloads, so two overlap well on two cores. Longest first.
  jobs_max=${BERTH_STANDIN_JOBS:-2}
  [[ $jobs_max =~ ^[1-9][0-9]*$ ]] || jobs_max=2
  build_one() {
    local name=$1 started=$SECONDS
    if ! d build -q --network host --label "org.berth.standin-key=$key" \
      -t "berth-standin/$name:latest" "$here/$name" >"$cache/build-$name.log" 2>&1; then
      return 1
    fi
    log "built $name in $((SECONDS - started))s"
  }
  failed=()
  declare -A pid_of=()
  reap() { # waits for one build to end; records it when it failed
    local done_pid="" name status=0
    wait -n -p done_pid "${pid_of[@]}" || status=$?
    for name in "${!pid_of[@]}"; do
      if [[ ${pid_of[$name]} == "$done_pid" ]]; then
        unset "pid_of[$name]"
        ((status == 0)) || failed+=("$name")
      fi
    done
  }
  for name in "${BUILD_ORDER[@]}"; do
    while ((${#pid_of[@]} >= jobs_max)); do reap; done
    log "building berth-standin/$name:latest"
    build_one "$name" &
    pid_of[$name]=$!
  done
  while ((${#pid_of[@]} > 0)); do reap; done
  if ((${#failed[@]} > 0)); then
    for name in "${failed[@]}"; do
      tail -n 40 "$cache/build-$name.log" >&2
      log "building $name failed (full log: $cache/build-$name.log)"
    done
    exit 1
  fi
  d image prune -f >/dev/null # intermediate stages (holder's), nothing else in this private daemon
  # The base too (it shares its layer with the others): later Dockerfiles may build FROM it.
  tags=("$BASE_TAG")
  for name in "${NAMES[@]}"; do tags+=("berth-standin/$name:latest"); done
  d save -o "$cache/standins-$key.tar.tmp" "${tags[@]}"
  find "$cache" -maxdepth 1 -name 'standins-*.tar' -delete
  mv "$cache/standins-$key.tar.tmp" "$cache/standins-$key.tar"
fi

for name in "${NAMES[@]}"; do echo "berth-standin/$name:latest"; done
