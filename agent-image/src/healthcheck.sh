#!/bin/bash
# Docker HEALTHCHECK: healthy while the agent's status endpoint answers /healthz with 200 (it answers 503 once the
# agent is in error). bash's /dev/tcp instead of a Node.js start: a probe every 15 s must cost the person
# milliseconds, not the 0.06-0.11 CPU s a new runtime takes.
exec 3<>"/dev/tcp/127.0.0.1/${STATUS_PORT:-8765}" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
read -r -t 4 _ code _ <&3 || exit 1
[ "$code" = 200 ]
