#!/usr/bin/env bash
# Regenerates the sample PR comment shown in README.md: in a throwaway clone of the committed
# project, raises staging's agents per host and changes its time zone (a service-layer and a
# host-layer change), commits, and prints `berth plan staging --against HEAD~1`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/repo"
ln -s "$root/node_modules" "$work/repo/node_modules"
cd "$work/repo"
sed -i 's/agentsPerHost: 3/agentsPerHost: 4/; s#timezone: Europe/Rome#timezone: UTC#' stacks/Pulumi.staging.yaml
git -c user.email=sample@example.com -c user.name=sample commit -qam "staging: 4 agents per host, UTC"
node bin/berth.js plan staging --against HEAD~1 --out "$work/out"
