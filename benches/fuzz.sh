#!/usr/bin/env bash
# The fuzz tests (tests/it/fuzz.rs) for MINUTES minutes (default 10): event files of mutated
# and of random content through the real ingest, the codes' checks, every route's URL
# parameters and the dashboard files, run over and over with fresh random seeds and CASES
# cases per round. Prints the cases run per property and in all, and any failure (0 expected).
#
#   benches/fuzz.sh
#   MINUTES=60 CASES=20000 benches/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/mirato-bench-fuzz}
source benches/test-binaries.sh
export PROPTEST_CASES="${CASES:-2000}"
end=$(( $(date +%s) + ${MINUTES:-10} * 60 ))
rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
  rounds=$((rounds + 1))
  if ! "$WORK/it" fuzz:: --nocapture >"$WORK/round-$rounds.log" 2>&1; then
    grep -E "panicked|minimal failing input|Fail\(" "$WORK/round-$rounds.log" | head -10
    echo "FAILED in round $rounds: see $WORK/round-$rounds.log"
    exit 1
  fi
  grep -h "^FUZZ-CASES" "$WORK/round-$rounds.log" >>"$WORK/cases"
done
echo "rounds: $rounds, PROPTEST_CASES=$PROPTEST_CASES, failures: 0"
awk '{n[$2] += $3; t += $3} END {for (k in n) printf "  %-22s %d cases\n", k, n[k]; printf "  %-22s %d cases\n", "all", t}' "$WORK/cases"
