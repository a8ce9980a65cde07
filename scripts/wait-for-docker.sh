#!/usr/bin/env bash
# Waits until a CI host's dockerd answers, so Pulumi does not race the host's first boot (Ignition,
# the btrfs mount, docker.service) when it starts creating containers.
#
#   wait-for-docker.sh [options] USER@HOST        ssh mode: `ssh USER@HOST docker info`
#   wait-for-docker.sh --tls [options] [USER@]HOST tls mode: `curl https://HOST:PORT/_ping` (mutual TLS)
#
# Options:
#   --timeout SECONDS      give up after this long (default 600; env WAIT_FOR_DOCKER_TIMEOUT)
#   --port PORT            dockerd's TLS port (tls mode; default 2376)
#   --tls                  tls mode; the PEM contents come from the environment:
#                          DOCKER_TLS_CA_PEM, DOCKER_TLS_CERT_PEM, DOCKER_TLS_KEY_PEM
#   --forget-host-key      ssh mode: first drop HOST's entry from ~/.ssh/known_hosts. Berth passes it
#                          because the script only runs when the server was (re)created: a floating IP
#                          outlives its server, and a new server has a new host key.
#   --ssh-opt OPTION       extra `ssh -o OPTION` (repeatable)
#
# Progress goes to stderr. Exit status: 0 when dockerd answered, 1 on timeout, 2 on bad usage.
set -euo pipefail

timeout="${WAIT_FOR_DOCKER_TIMEOUT:-600}"
port=2376
mode=ssh
forget=0
target=""
extra_ssh_opts=()

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --timeout)
      timeout="${2:-}"
      shift 2
      ;;
    --port)
      port="${2:-}"
      shift 2
      ;;
    --tls)
      mode=tls
      shift
      ;;
    --forget-host-key)
      forget=1
      shift
      ;;
    --ssh-opt)
      extra_ssh_opts+=(-o "${2:-}")
      shift 2
      ;;
    -h | --help) usage ;;
    -*)
      echo "wait-for-docker: unknown option $1" >&2
      usage
      ;;
    *)
      if [[ -n "$target" ]]; then
        echo "wait-for-docker: more than one target given" >&2
        usage
      fi
      target="$1"
      shift
      ;;
  esac
done

[[ -n "$target" ]] || usage
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || {
  echo "wait-for-docker: --timeout must be a positive number of seconds" >&2
  exit 2
}
[[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] || {
  echo "wait-for-docker: --port must be a TCP port" >&2
  exit 2
}

host="${target#*@}"
# A literal IPv6 address needs brackets in a URL.
url_host="$host"
[[ "$host" == *:* ]] && url_host="[$host]"

log() { echo "wait-for-docker: $*" >&2; }

probe_ssh() {
  ssh -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=accept-new \
    "${extra_ssh_opts[@]}" "$target" docker info >/dev/null 2>&1
}

tls_dir=""
cleanup() {
  if [[ -n "$tls_dir" ]]; then rm -rf "$tls_dir"; fi
}
trap cleanup EXIT

if [[ "$mode" == tls ]]; then
  for v in DOCKER_TLS_CA_PEM DOCKER_TLS_CERT_PEM DOCKER_TLS_KEY_PEM; do
    if [[ -z "${!v:-}" ]]; then
      echo "wait-for-docker: --tls needs $v in the environment" >&2
      exit 2
    fi
  done
  tls_dir="$(umask 077 && mktemp -d)"
  (
    umask 077
    printf '%s\n' "$DOCKER_TLS_CA_PEM" >"$tls_dir/ca.pem"
    printf '%s\n' "$DOCKER_TLS_CERT_PEM" >"$tls_dir/cert.pem"
    printf '%s\n' "$DOCKER_TLS_KEY_PEM" >"$tls_dir/key.pem"
  )
fi

probe_tls() {
  curl --silent --show-error --fail --max-time 5 \
    --cacert "$tls_dir/ca.pem" --cert "$tls_dir/cert.pem" --key "$tls_dir/key.pem" \
    "https://${url_host}:${port}/_ping" >/dev/null 2>&1
}

if [[ "$mode" == ssh && "$forget" == 1 ]]; then
  ssh-keygen -R "$host" >/dev/null 2>&1 || true
fi

start=$SECONDS
delay=2
attempt=0
while :; do
  attempt=$((attempt + 1))
  if [[ "$mode" == ssh ]]; then
    probe_ssh && ok=1 || ok=0
  else
    probe_tls && ok=1 || ok=0
  fi
  elapsed=$((SECONDS - start))
  if [[ "$ok" == 1 ]]; then
    log "dockerd on $host answered after ${elapsed}s (attempt $attempt)"
    exit 0
  fi
  if ((elapsed >= timeout)); then
    log "gave up on $host after ${elapsed}s ($attempt attempts)"
    exit 1
  fi
  remaining=$((timeout - elapsed))
  ((delay > remaining)) && delay=$remaining
  log "dockerd on $host ($mode) not ready yet (attempt $attempt, ${elapsed}s of ${timeout}s); retrying in ${delay}s"
  sleep "$delay"
  # Exponential backoff, capped at 30 s.
  delay=$((delay * 2))
  ((delay > 30)) && delay=30
done
