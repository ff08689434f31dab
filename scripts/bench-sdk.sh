#!/usr/bin/env bash
# SDK benchmarks (numbers, not pass/fail), each next to what an app would use
# instead, measured in the same run:
#  1. gzipped size of the npm package's wasm + JS glue (builds pkg/ if stale);
#  2. tests/bench/sdk.mjs in headless Chromium against a real tidings-server:
#     end-to-end events/s into a typed listener vs EventSource + JSON.parse
#     (defaults, and with the stored position / tab sharing off), a follower
#     tab's events/s, decode + dispatch vs JSON.parse + switch on an in-page
#     feed, and publish -> listener latency percentiles at 200 events/s
#     (leader tab, EventSource + JSON.parse in the same page, follower tab).
# Where the bytes go: scripts/size.sh (twiggy).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/sdk}

if [ ! -f pkg/tidings_bg.wasm ] || [ -n "$(find sdk/src sdk/Cargo.toml pkg-template -newer pkg/tidings_bg.wasm -print -quit)" ]; then
  bash scripts/build-pkg.sh >/dev/null
fi
gz() { gzip -9 -c "$1" | wc -c; }
w=$(gz pkg/tidings_bg.wasm); j=$(gz pkg/tidings.js)
echo "size: tidings_bg.wasm $(wc -c <pkg/tidings_bg.wasm) B raw / $w B gzip -9; tidings.js $(wc -c <pkg/tidings.js) B raw / $j B gzip -9; total $((w + j)) B gzip"

cargo build -p tidings-server --bin tidings-server 2>&1 | grep -vE '^\s*(Compiling|Finished|Blocking)' >&2 || true
[ -d tests/node_modules ] || (cd tests && npm install --no-audit --no-fund --loglevel=error)
(cd tests && TIDINGS_SERVER_BIN="$CARGO_TARGET_DIR/debug/tidings-server" node bench/sdk.mjs)
