#!/bin/sh
# Like the mongo image's entrypoint: options go to mongod, mongod listens on all interfaces unless
# told otherwise, and as root it hands /data/db and /data/configdb to `mongodb` and runs as that user.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- mongod "$@"
fi
if [ "$1" = mongod ]; then
  case " $* " in
    *" --bind_ip "* | *" --bind_ip_all "*) ;;
    *) set -- "$@" --bind_ip_all ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    find /data/db /data/configdb \! -user mongodb -exec chown mongodb '{}' +
    exec setpriv --reuid=mongodb --regid=mongodb --init-groups "$@"
  fi
fi
exec "$@"
