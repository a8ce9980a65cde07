#!/bin/bash
# Stand-in for the nginx image's entrypoint. Upstream nginx is built with --user=nginx, so a
# configuration without a `user` directive runs its workers as `nginx`; Debian's build defaults to
# `nobody`. To keep that behaviour, `user nginx;` is added with -g when the configuration file
# (-c FILE, default /etc/nginx/nginx.conf) has no `user` directive of its own.
set -euo pipefail
if [[ ${1:-} == nginx ]]; then
  conf=/etc/nginx/nginx.conf
  args=("$@")
  for ((i = 1; i < ${#args[@]} - 1; i++)); do
    [[ ${args[i]} == -c ]] && conf=${args[i + 1]}
  done
  if ! grep -Eq '^[[:space:]]*user[[:space:]]' "$conf" 2>/dev/null; then
    found=0
    for ((i = 1; i < ${#args[@]} - 1; i++)); do
      if [[ ${args[i]} == -g ]]; then
        args[i + 1]="${args[i + 1]} user nginx;"
        found=1
        break
      fi
    done
    ((found)) || args+=(-g "user nginx;")
    set -- "${args[@]}"
  fi
fi
exec "$@"
