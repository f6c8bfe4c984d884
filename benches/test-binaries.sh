# Sourced by the benchmarks that drive the test suite (faults.sh, fuzz.sh): builds the test
# binaries and copies them to $WORK ($WORK/it, $WORK/mirato), so that the target folder may be
# rebuilt during a long run; the suite drives the copy (MIRATO_TEST_BIN).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mirato-target}"
rm -rf "$WORK" && mkdir -p "$WORK"
SUITE=$(cargo test --all-features --no-run --test it --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" and m.get("executable"):
        print(m["executable"])')
cargo build --all-features --quiet
cp "$SUITE" "$WORK/it"
cp "$CARGO_TARGET_DIR/debug/mirato" "$WORK/mirato"
export MIRATO_TEST_BIN="$WORK/mirato"
