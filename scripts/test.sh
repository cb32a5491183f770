#!/usr/bin/env bash
# Every test: install packages, prepare Docker and the images, then lint, typecheck, unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-packages.sh
scripts/prepare-machine.sh
npm test
