#!/usr/bin/env bash
# The whole suite: prerequisites (installed if missing), build, type checks, lint, unit, integration, UI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build
npm run typecheck
npm run lint
npx vitest run --project unit --passWithNoTests
npx vitest run --project integration --passWithNoTests --no-file-parallelism
npx vitest run --project ui --passWithNoTests --no-file-parallelism
