#!/usr/bin/env bash
# SDK benchmarks (numbers, not pass/fail):
#  1. gzipped size of the npm package's wasm + JS glue (builds pkg/ if needed);
#  2. in headless Chromium against a real tidings-server: typed events/s into a
#     Tidings listener vs a plain EventSource + JSON.parse in the same page, and
#     decode-only cost per event (sdk/tests/bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/sdk}
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

if [ ! -f pkg/tidings_bg.wasm ] || [ -n "$(find sdk/src sdk/Cargo.toml pkg-template -newer pkg/tidings_bg.wasm -print -quit)" ]; then
  bash scripts/build-pkg.sh >/dev/null
fi
gz() { gzip -9 -c "$1" | wc -c; }
w=$(gz pkg/tidings_bg.wasm); j=$(gz pkg/tidings.js)
echo "size: tidings_bg.wasm $(wc -c <pkg/tidings_bg.wasm) B raw / $w B gzip -9; tidings.js $(wc -c <pkg/tidings.js) B raw / $j B gzip -9; total $((w + j)) B gzip"

cargo build -p tidings-server --bin tidings-server 2>&1 | grep -vE '^\s*(Compiling|Finished|Blocking)' >&2 || true
tmp=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/tidings-server" --dev --addr 127.0.0.1:0 --data-dir "$tmp" \
  --replay-log-size 20000 --subscriber-queue 4096 >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT INT TERM
url=""
for _ in $(seq 1 200); do
  url=$(sed -n 's/^tidings-server listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$tmp/log" | head -1)
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$tmp/log" >&2; exit 1; }
export TIDINGS_BENCH_SERVER=$url WASM_BINDGEN_TEST_TIMEOUT=300
# Release build of the test so the numbers reflect the shipped code.
cargo test -p tidings --release --target wasm32-unknown-unknown --test bench -- --nocapture 2>&1 \
  | grep -E '^\s*bench:' | sed 's/^\s*//'
