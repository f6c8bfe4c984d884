# Sourced by the benchmark scripts: the binary they time, built once in the shared target folder.
# BIN=path times another build (say, the previous release) on this machine, as it is.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mirato-target}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN="$CARGO_TARGET_DIR/release/mirato"
fi
