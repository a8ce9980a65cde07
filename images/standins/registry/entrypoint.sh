#!/bin/sh
# Same dispatch as the registry:2 image's entrypoint: a config path or a subcommand goes to `registry`.
set -e
case "$1" in
  *.yaml | *.yml) set -- registry serve "$@" ;;
  serve | garbage-collect | help | -*) set -- registry "$@" ;;
esac
exec "$@"
