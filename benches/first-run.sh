#!/usr/bin/env bash
# First run (issue 15): how long a newcomer waits after `git clone`. Clones the repository into a
# temporary folder with an EMPTY Cargo target folder, then times the README's two commands ("Two
# commands", the first ```sh block after that heading, read from the clone's README so the two
# never drift apart):
#   1. the demo command, started in the background, until the first dashboard answers
#      (http://127.0.0.1:$PORT/ answers 200 or redirects to the login); then it is stopped;
#   2. the test command, to completion.
# Prints a markdown table (step, minutes) and the machine, for the README and benches/RESULTS.md.
#
#   benches/first-run.sh                      # clones the repository this script belongs to
#   REPO=/path/or/url REV=main benches/first-run.sh
#   DRY_RUN=1 benches/first-run.sh            # print what it would do, build nothing
#   KEEP=1 benches/first-run.sh               # keep the clone and its target folder afterwards
#
# What is cold and what is not: the target folder is empty (CARGO_TARGET_DIR inside the temporary
# folder, RUSTC_WRAPPER unset so no compiler cache helps), so every crate is compiled. CARGO_HOME
# is left alone: crate sources come from its registry cache when present, else from crates.io
# (the only network this project's machines have is the package registries). The `cargo fetch`
# row shows that part separately. A clone of a local folder takes its committed HEAD (or REV):
# uncommitted changes are not measured. The README's test prerequisites (Python packages,
# Chromium) are taken as installed; playwright-core is copied (untimed) from REPO's
# tests/e2e/node_modules when there is one, so the browser test runs rather than skips.
#
# Not a timed test: it takes half an hour or more of every core. Run it by hand on an otherwise
# idle machine.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=${REPO:-$(cd "$SCRIPT_DIR/.." && pwd)}
REV=${REV:-HEAD}
PORT=${PORT:-18480}
TIMEOUT_MINUTES=${TIMEOUT_MINUTES:-90}
DRY_RUN=${DRY_RUN:-0}
KEEP=${KEEP:-0}

# The two commands of the README's "## Two commands" block, one per line, comments stripped.
readme_commands() {
  # awk reads to the end (no early exit), so the writer never gets SIGPIPE under pipefail.
  awk 'done { next }
       /^## Two commands/ { section = 1; next }
       section && /^## / { done = 1; next }
       section && /^```sh/ { block = 1; next }
       block && /^```/ { done = 1; next }
       block { print }' |
    sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' | grep -v '^$' || true
}

# The README as it will be cloned: the clone's own, or (dry run) the one at REV in REPO.
readme_text() {
  if [ -d "$1/.git" ] || git -C "$1" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$1" show "$2:README.md"
  else
    cat "$1/README.md"
  fi
}

pick_commands() {
  local commands
  commands=$(readme_text "$1" "$2" | readme_commands)
  DEMO_CMD=$(printf '%s\n' "$commands" | grep -E -m 1 '(^|[[:space:]])demo([[:space:]]|$)' || true)
  TEST_CMD=$(printf '%s\n' "$commands" | grep -E -m 1 '(^|[[:space:]])test([[:space:]]|$)' || true)
  if [ -z "$DEMO_CMD" ] || [ -z "$TEST_CMD" ] || [ "$(printf '%s\n' "$commands" | wc -l)" -ne 2 ]; then
    echo "first-run: README's \"Two commands\" block should hold a demo and a test command; found:" >&2
    printf '  %s\n' "$commands" >&2
    exit 1
  fi
}

now() { date +%s.%N; }
minutes() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 60 }'; }
# Cargo's own "Finished ... in 9m 12s" line: how much of a step was the build.
build_time() { grep -o 'Finished .* in [0-9hms .]*' "$1" | tail -n 1 | sed 's/.* in //' || true; }

machine() {
  echo "- date (UTC): $(date -u '+%Y-%m-%d %H:%M')"
  echo "- cores (nproc): $(nproc)"
  echo "- CPU: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "- memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- $(rustc --version); $(cargo --version)"
  echo "- load average at start: $LOAD_START; at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
}

LOAD_START=$(cut -d ' ' -f 1-3 /proc/loadavg)
for tool in git cargo rustc curl setsid awk; do
  command -v "$tool" >/dev/null || { echo "first-run: needs $tool" >&2; exit 1; }
done

if [ "$DRY_RUN" = 1 ]; then
  pick_commands "$REPO" "$REV"
  # shellcheck disable=SC2016 # the placeholder is printed, not expanded
  WORK='$WORK'
  cat <<EOF
first-run (dry run): nothing is cloned, built or started.
  WORK=\$(mktemp -d "${TMPDIR:-/tmp}/mirato-first-run.XXXXXX")
  git clone --quiet --no-local "$REPO" "$WORK/mirato" && git -C "$WORK/mirato" checkout --quiet "$REV"
  export CARGO_TARGET_DIR="$WORK/target" (empty); unset RUSTC_WRAPPER; CARGO_HOME stays ${CARGO_HOME:-~/.cargo}
  cp -a "$REPO/tests/e2e/node_modules" "$WORK/mirato/tests/e2e/"   (if there is one; untimed)
  cd "$WORK/mirato" && cargo fetch
  demo, in the background, in its own process group, output in $WORK/demo.log:
    MIRATO_SERVER_ADDR=127.0.0.1:$PORT MIRATO_DATA_DIR=$WORK/demo-data \\
    MIRATO_KEY_FILE=$WORK/hmac.key MIRATO_AUTH_USERS_FILE=$WORK/users.toml \\
    $DEMO_CMD
  poll http://127.0.0.1:$PORT/ every 2 s (at most $TIMEOUT_MINUTES minutes) until 200 or a redirect to /login;
  record the time; stop the demo's process group (TERM, then KILL after 70 s)
  tests, output in $WORK/test.log:
    $TEST_CMD
  print the table (step, minutes) and the machine; remove the clone and target unless KEEP=1
EOF
  echo
  echo "machine it would report:"
  machine
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mirato-first-run.XXXXXX")
DEMO_PID=
cleanup() {
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then stop_demo; fi
  if [ "$KEEP" != 1 ]; then
    rm -rf "$WORK/mirato" "$WORK/target" "$WORK/demo-data"
    echo "first-run: logs kept in $WORK (KEEP=1 keeps the clone and target too)" >&2
  fi
}
# The demo runs in a session of its own (setsid), so its process group is its pid: stop that
# group only, which holds cargo and the server it started.
stop_demo() {
  local group
  group=$(ps -o pgid= -p "$DEMO_PID" | tr -d ' ' || true)
  if [ "$group" = "$DEMO_PID" ]; then kill -TERM -- "-$DEMO_PID" 2>/dev/null || true
  else kill -TERM "$DEMO_PID" 2>/dev/null || true; fi
  for _ in $(seq 70); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 1; done
  if kill -0 "$DEMO_PID" 2>/dev/null; then
    if [ "$group" = "$DEMO_PID" ]; then kill -KILL -- "-$DEMO_PID" 2>/dev/null || true
    else kill -KILL "$DEMO_PID" 2>/dev/null || true; fi
  fi
  wait "$DEMO_PID" 2>/dev/null || true
  DEMO_PID=
}
trap cleanup EXIT

if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
  echo "first-run: something already answers on port $PORT; set PORT" >&2
  exit 1
fi

echo "first-run: working in $WORK ($(df -h --output=avail "$WORK" | tail -n 1 | tr -d ' ') free)" >&2
T0=$(now)
git clone --quiet --no-local "$REPO" "$WORK/mirato"
git -C "$WORK/mirato" checkout --quiet "$REV"
T_CLONE=$(now)
COMMIT=$(git -C "$WORK/mirato" log -1 --format='%h %cd' --date=short)
pick_commands "$WORK/mirato" HEAD
if [ -d "$REPO/tests/e2e/node_modules" ]; then
  cp -a "$REPO/tests/e2e/node_modules" "$WORK/mirato/tests/e2e/"
fi

export CARGO_TARGET_DIR="$WORK/target" CARGO_TERM_COLOR=never
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER
cd "$WORK/mirato"
cargo fetch --quiet
T_FETCH=$(now)

echo "first-run: $DEMO_CMD" >&2
MIRATO_SERVER_ADDR="127.0.0.1:$PORT" MIRATO_DATA_DIR="$WORK/demo-data" \
  MIRATO_KEY_FILE="$WORK/hmac.key" MIRATO_AUTH_USERS_FILE="$WORK/users.toml" \
  setsid bash -c "exec $DEMO_CMD" </dev/null >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
DEADLINE=$(awk -v t="$T_FETCH" -v m="$TIMEOUT_MINUTES" 'BEGIN { printf "%d", t + m * 60 }')
ANSWER=
while :; do
  ANSWER=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$PORT/" || true)
  case "$ANSWER" in
    200\ *) break ;;
    30[12378]\ *login*) break ;;
  esac
  if ! kill -0 "$DEMO_PID" 2>/dev/null; then
    echo "first-run: the demo ended before the dashboard answered; the end of its log:" >&2
    tail -n 30 "$WORK/demo.log" >&2
    exit 1
  fi
  if [ "$(date +%s)" -gt "$DEADLINE" ]; then
    echo "first-run: no dashboard after $TIMEOUT_MINUTES minutes; the end of the demo's log:" >&2
    tail -n 30 "$WORK/demo.log" >&2
    exit 1
  fi
  sleep 2
done
T_DEMO=$(now)
DEMO_BUILD=$(build_time "$WORK/demo.log")
stop_demo

echo "first-run: $TEST_CMD" >&2
TEST_RC=0
bash -c "$TEST_CMD" </dev/null >"$WORK/test.log" 2>&1 || TEST_RC=$?
T_TEST=$(now)
TEST_BUILD=$(build_time "$WORK/test.log")

echo
echo "First run of commit $COMMIT from a fresh clone, empty target folder:"
echo
echo "| step | minutes |"
echo "|---|---|"
echo "| \`git clone\` | $(minutes "$T0" "$T_CLONE") |"
echo "| \`cargo fetch\` (crate sources, from the registry cache when present) | $(minutes "$T_CLONE" "$T_FETCH") |"
echo "| \`$DEMO_CMD\` until the first dashboard answers (${ANSWER%% *}; build ${DEMO_BUILD:-?}) | $(minutes "$T_FETCH" "$T_DEMO") |"
echo "| \`$TEST_CMD\` to completion (exit code $TEST_RC; build ${TEST_BUILD:-?}) | $(minutes "$T_DEMO" "$T_TEST") |"
echo "| both commands | $(minutes "$T_FETCH" "$T_TEST") |"
echo "| from \`git clone\` to the end of the tests | $(minutes "$T0" "$T_TEST") |"
echo
echo "Machine:"
machine
if [ "$TEST_RC" -ne 0 ]; then
  echo
  echo "The tests failed (exit code $TEST_RC); the end of their log ($WORK/test.log):"
  tail -n 20 "$WORK/test.log"
fi
