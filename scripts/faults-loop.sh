#!/usr/bin/env bash
# `make faults` N times in a row (default 10), each run's output in reports/faults-loop/run-K.log;
# prints each run's non-zero findings and its model test's verdict, and exits non-zero if any
# run failed. docs/bench/faults.json is put back after each run (a run rewrites it).
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
out=reports/faults-loop
mkdir -p "$out"
failed=0
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs: $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
  make faults >"$out/run-$i.log" 2>&1
  rc=$?
  findings=$(grep -E '^\| \*\*' "$out/run-$i.log" | grep -v '\*\*0\*\*' | tr -d '|*' | xargs)
  model=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$out/run-$i.log" | tail -1)
  echo "  exit $rc; findings: ${findings:-none}; model test: ${model:-not run}"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  git checkout -q -- docs/bench/faults.json 2>/dev/null || true
done
echo "$failed of $runs runs failed"
[ "$failed" -eq 0 ]
