#!/usr/bin/env bash
# Builds a stack's per-build agent image and pushes it to the stack's own registry, after
# `pulumi up` (the registry exists only once the stack is up). .github/workflows/deploy.yml runs it
# in each deploy job, in two steps:
#
#   scripts/push-agent-image.sh detect <stack>
#       Sets the step output `image` (in $GITHUB_OUTPUT; printed when that is unset) to the image the
#       stack's jenkinsCasc output names when it is the stack's own, <registry>/berth/jenkins-agent:
#       <tag>; to nothing when per-build agents are off or pull an image from elsewhere (the
#       workflow then skips the push). Reads no secret.
#   scripts/push-agent-image.sh push <stack> <image>
#       Checks that <image>'s tag is this checkout's revision (or $BERTH_AGENT_IMAGE_TAG), before
#       reading any secret; reads only registryPasswords with its secrets, masking every password
#       before anything else runs; trusts registryCaPem for that registry only
#       (/etc/docker/certs.d/<registry>/ca.crt); pins the registry's name to the first host's
#       floating IP in /etc/hosts unless DNS knows it; logs in as the first registry user (the
#       password from a 0600 file on stdin, in a throwaway DOCKER_CONFIG); runs
#       images/jenkins-agent/build-and-push.sh; and fails unless it pushed <image>.
#
# Needs the Pulumi CLI with access to the stack's backend, docker, sudo, getent, and node with the
# project's node_modules (`npm ci`); the JavaScript is scripts/agent-image.mjs. Scratch files live in
# $RUNNER_TEMP (else $TMPDIR, /tmp) and are removed on exit. Tested by
# test/workflows/agent-image.test.ts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

usage() {
  echo "usage: $0 detect <stack> | push <stack> <image>" >&2
  exit 2
}

detect() {
  local stack=$1
  pulumi stack output --json --stack "$stack" | node "$here/agent-image.mjs" image "$stack"
}

push() {
  local stack=$1 image=$2 registry tag expected pushed
  registry=${image%%/*}
  tag=${image##*:}
  # config/load.ts tagged it with this checkout's revision (or $BERTH_AGENT_IMAGE_TAG).
  expected=${BERTH_AGENT_IMAGE_TAG:-$(git -C "$root" rev-parse HEAD)}
  if [[ $tag != "$expected" ]]; then
    echo "::error::jenkinsCasc names $image, but this checkout builds the tag $expected"
    exit 1
  fi
  # Global, for the EXIT trap (which runs after this function has returned).
  work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/agent-image.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  pulumi stack output --json --stack "$stack" >"$work/outputs.json"
  # Only this output is read with its secrets. Every registry password is masked before anything
  # else runs; the one used goes to a 0600 file and docker login reads it on stdin.
  pulumi stack output --json --show-secrets --stack "$stack" registryPasswords |
    node "$here/agent-image.mjs" login "$work"
  # The daemon pushes: it trusts the stack's CA for this registry only, not system-wide.
  if [[ -s $work/ca.crt ]]; then
    sudo install -D -m 0644 "$work/ca.crt" "/etc/docker/certs.d/$registry/ca.crt"
  fi
  # The CI hosts pin the registry's name in /etc/hosts; do the same here unless DNS knows it.
  if ! getent hosts "${registry%%:*}" >/dev/null; then
    local address
    address=$(<"$work/address")
    [[ -n $address ]] || {
      echo "::error::no floating IP for the registry host"
      exit 1
    }
    echo "$address ${registry%%:*}" | sudo tee -a /etc/hosts >/dev/null
  fi
  # Logins stay in this run's own DOCKER_CONFIG, removed with $work.
  export DOCKER_CONFIG=$work/docker
  docker login --username "$(<"$work/user")" --password-stdin "$registry" <"$work/password"
  pushed=$("$root/images/jenkins-agent/build-and-push.sh" "$registry" "$tag")
  if [[ $pushed != "$image" ]]; then
    echo "::error::pushed $pushed, but jenkinsCasc names $image"
    exit 1
  fi
  echo "Pushed $pushed"
}

case ${1:-} in
  detect) [[ $# -eq 2 && -n $2 ]] || usage; detect "$2" ;;
  push) [[ $# -eq 3 && -n $2 && -n $3 ]] || usage; push "$2" "$3" ;;
  *) usage ;;
esac
