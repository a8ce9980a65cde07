#!/bin/sh
# Same behaviour as the redis image's entrypoint: options or a .conf file go to redis-server; as
# root, /data is handed to `redis` and the server runs as that user. Upstream compiles
# protected-mode off as the default; Debian's binary keeps it on, so it is turned off here unless
# the command line sets it.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
  case " $* " in
    *" --protected-mode "*) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
um=$(umask)
if [ "$um" = 0022 ]; then
  umask 0077
fi
exec "$@"
