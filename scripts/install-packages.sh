#!/usr/bin/env bash
# `npm ci`, unless node_modules was installed from this very package-lock.json already (by this script): CI installs
# once, then starts the fresh set-up check (which links this node_modules) beside the tests, whose own install must
# then not delete it.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.ray-agent-installed-lock
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
  printf '[install] node_modules is installed from this package-lock.json: npm ci skipped\n' >&2
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" >"$stamp"
