#!/bin/sh
# Ray 2.58 passes --overlay2=root:dir=PATH (gVisor's 2023+ syntax); Debian's runsc 20221219 takes root:PATH.
for a; do
  shift
  case "$a" in
    --overlay2=root:dir=*) a="--overlay2=root:${a#--overlay2=root:dir=}" ;;
  esac
  set -- "$@" "$a"
done
[ -n "$H7_DEBUG" ] && set -- --debug --debug-log=/tmp/runsc-logs/ "$@"
exec /usr/bin/runsc "$@"
