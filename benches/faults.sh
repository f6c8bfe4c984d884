#!/usr/bin/env bash
# The kill-anywhere suite (tests/it/faults.rs) at length: ITERATIONS kills (default 500) of an
# ingest of a mixed folder, a compaction, a report, the scheduled export and the server with
# its inbox job, each at a random moment, each followed by the checks of the suite (the store
# equals an uninterrupted run, nothing doubled or lost, nothing temporary left, outside readers
# never ahead of a commit). Prints the suite's tally: iterations, kills, rows lost, rows doubled.
#
#   benches/faults.sh                              # 500 iterations, every kind
#   ITERATIONS=2000 KINDS=ingest,compaction benches/faults.sh
#   SEED=1733 benches/faults.sh                    # replays a run
#
# It uses the test build (the binaries the suite drives), copied aside first so that the
# target folder may be rebuilt during a long run: what is measured is counts, not speed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import deltalake, duckdb' 2>/dev/null || python3 -m pip install --quiet deltalake duckdb
WORK=${WORK:-/tmp/mirato-bench-faults}
source benches/test-binaries.sh
export MIRATO_FAULT_ITERATIONS="${ITERATIONS:-500}"
[ -n "${SEED:-}" ] && export MIRATO_FAULT_SEED="$SEED"
[ -n "${KINDS:-}" ] && export MIRATO_FAULT_KINDS="$KINDS"
LOG="$WORK/log"
start=$(date +%s)
"$WORK/it" faults::kill_anywhere --exact --nocapture >"$LOG" 2>&1 || {
  grep -E "panicked|MIRATO_FAULT_SEED" "$LOG" | head -20
  echo "FAILED: see $LOG; the tally before the failure:"
  grep -o "FAULT-TALLY .*" "$LOG" | tail -1
  exit 1
}
grep -o "kill suite: .*" "$LOG"
grep -o "FAULT-TALLY .*" "$LOG" | tail -1 | sed 's/^FAULT-TALLY //' | python3 -m json.tool
echo "wall time: $(( $(date +%s) - start )) s"
