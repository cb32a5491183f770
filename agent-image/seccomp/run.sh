#!/bin/sh
# usage: run.sh "<extra docker opts>" <cmd...>   — a container hardened like the agent's
extra="$1"; shift
exec docker run --rm --name ra-h7-probe --user 1000:1000 --cap-drop ALL --security-opt no-new-privileges --read-only \
  --tmpfs /tmp:rw,exec,nosuid,nodev,size=512m --init --pids-limit 4096 $extra --entrypoint sh ray-agent:h7 -c "$*"
