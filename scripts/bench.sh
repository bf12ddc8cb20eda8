#!/usr/bin/env bash
# Benchmarks: each prints its figures as ratios against a peer measured in the same run (tcpdump,
# tshark, OpenSSH). Never gates on absolute times. Needs root (namespaces, capture).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -x resources/helper/linux-x64/tapscope-helper ] && [ -f dist/src/cli/main.js ] || npm run build
for b in test/bench/*-bench.sh test/bench/*-bench.ts; do
  [ -e "$b" ] || continue
  echo "== $b"
  case "$b" in
    *.sh) bash "$b" ;;
    *.ts) npx tsx "$b" ;;
  esac
done
