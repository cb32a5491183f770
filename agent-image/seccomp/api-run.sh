#!/bin/sh
# usage: api-run.sh '<json fragment for HostConfig>' cmd  — creates via the Engine API (what dockerode sends)
hc="$1"; shift
SECCOMP=$(python3 -c 'import json;print(json.dumps(json.dumps(json.load(open("/tmp/h7/p-min.json")))))')
body=$(cat <<J
{"Image":"ray-agent:h7","User":"1000:1000","Entrypoint":["sh","-c"],"Cmd":[$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1]))' "$*")],
 "HostConfig":{"CapDrop":["ALL"],"SecurityOpt":["no-new-privileges","seccomp=$(echo $SECCOMP | sed 's/^"//;s/"$//')"],"ReadonlyRootfs":true,
 "Tmpfs":{"/tmp":"rw,exec,nosuid,nodev,size=512m"},"Init":true,"PidsLimit":4096 $hc}}
J
)
id=$(curl -s --unix-socket /var/run/docker.sock -H 'Content-Type: application/json' -d "$body" 'http://x/v1.41/containers/create?name=ra-h7-api' | python3 -c 'import json,sys;d=json.load(sys.stdin);print(d.get("Id") or d)')
docker start -a ra-h7-api 2>&1 | tail -2
docker inspect -f 'masked={{json .HostConfig.MaskedPaths}} ro={{json .HostConfig.ReadonlyPaths}}' ra-h7-api
docker rm -f ra-h7-api >/dev/null
