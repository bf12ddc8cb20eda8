#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine: system packages, npm dependencies, the full build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
