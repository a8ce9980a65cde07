#!/usr/bin/env bash
# Builds Berth's per-build agent image and pushes it to a stack's registry.
#
#   images/jenkins-agent/build-and-push.sh <registry host> [<tag>]
#
# Tags <registry host>/berth/jenkins-agent:<tag>, <tag> defaulting to the git revision
# (`git rev-parse HEAD`), which is what a stack's `berth:jenkins.perBuild.image: registry` resolves to
# (config/load.ts; or set BERTH_AGENT_IMAGE_TAG for both). The docker CLI must be logged in to the
# registry (`docker login <registry host>`), and the daemon, which does the push, must trust the
# registry's CA: /etc/docker/certs.d/<registry host>/ca.crt (stack output registryCaPem). Prints the
# pushed reference, and only that, on stdout. scripts/push-agent-image.sh runs it after `pulumi up`
# (.github/workflows/deploy.yml); test/e2e/perbuild.test.ts runs it against the registry the program
# deploys.
#
# Environment: BASE overrides the base image (--build-arg BASE=...); DOCKER_BUILD_ARGS adds build
# flags (split on whitespace, e.g. "--network host").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ $# -eq 1 || $# -eq 2 ]] || {
  echo "usage: $0 <registry host> [<tag>]" >&2
  exit 2
}
registry=$1
tag=${2:-${BERTH_AGENT_IMAGE_TAG:-$(git -C "$here" rev-parse HEAD)}}

[[ $registry =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$ ]] || {
  echo "build-and-push: not a registry host: $registry" >&2
  exit 2
}
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || {
  echo "build-and-push: not an image tag: $tag" >&2
  exit 2
}

image=$registry/berth/jenkins-agent:$tag
args=()
[[ -n ${BASE:-} ]] && args+=(--build-arg "BASE=$BASE")
# Word splitting is the documented interface of DOCKER_BUILD_ARGS.
# shellcheck disable=SC2206
[[ -n ${DOCKER_BUILD_ARGS:-} ]] && args+=(${DOCKER_BUILD_ARGS})

docker build "${args[@]}" --label "org.opencontainers.image.revision=$tag" -t "$image" "$here" >&2
docker push "$image" >&2
echo "$image"
