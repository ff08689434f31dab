#!/usr/bin/env bash
# The SDK in headless Chromium (wasm-bindgen-test) against real tidings-servers:
# builds tidings-server, starts three on 127.0.0.1:0 (a normal one, a "laggy"
# one with a 1-event subscriber queue so bursts make it close streams, one with
# a 3-event replay log), and the backends that are not tidings-server
# (tests/backends: plain ids, UUID ids, an LLM-style POST, the seed-003 stack),
# passes their URLs to the tests at compile time, runs them, kills everything
# on exit. Extra args go to `cargo test`. TIDINGS_WASM_BROWSERS="chromium firefox"
# runs the suite in each (default: chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/sdk}
# Engines to run the suite in, one after the other against the same servers:
# chromium (chromedriver) and/or firefox (geckodriver).
browsers=${TIDINGS_WASM_BROWSERS:-chromium}

cargo build -p tidings-server --bin tidings-server 2>&1 | grep -vE '^\s*(Compiling|Finished|Blocking)' >&2 || true
bin=$CARGO_TARGET_DIR/debug/tidings-server
[ -x "$bin" ] || { echo "[test-wasm] tidings-server did not build" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
# Process groups of the backends' supervisors: each runs in a group of its own
# (setsid), so what it started (uvicorn, node) goes with it even if the supervisor
# itself has to be killed before it could stop its child.
groups=()
# Stops every server and backend this script started: SIGTERM, up to 5 s to exit,
# then SIGKILL (to each backend's whole group); waits for each, so none outlives the
# script on any exit path.
cleanup() {
  local p _
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${groups[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# A signal ends the script (running the EXIT trap) instead of resuming it.
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME VAR ARGS... → exports VAR (the base URL) once the server says it listens.
# It runs in this shell, never in a `$(…)` subshell, so the server's pid reaches `pids`.
start() {
  local name=$1 var=$2; shift 2
  mkdir -p "$tmp/$name"
  "$bin" --dev --addr 127.0.0.1:0 --data-dir "$tmp/$name" --heartbeat-secs 0.5 --video-step-ms 50 "$@" \
    >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  local url=""
  for _ in $(seq 1 200); do
    url=$(sed -n 's/^tidings-server listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$tmp/$name.log" | head -1)
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "[test-wasm] $name server did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  export "$var=$url"
}

start main TIDINGS_TEST_SERVER
start laggy TIDINGS_TEST_SERVER_LAGGY --subscriber-queue 1
# A replay log of 3 events, so an old position gets a `reset` (gap).
start small-log TIDINGS_TEST_SERVER_SMALL_LOG --replay-log-size 3

# Backends that are not tidings-server (tests/backends/serve.mjs): each runs as a
# child of a supervisor whose control URL lets a test restart it on the same port.
# backend KIND VAR → exports VAR (the backend's URL) and VAR_CONTROL.
backend() {
  local kind=$1 var=$2 line=""
  # setsid execs node in place (a background job of a script leads no group), so
  # $! is node's pid and the id of its new group.
  setsid node tests/backends/serve.mjs "$kind" >"$tmp/backend-$kind.log" 2>&1 &
  pids+=($!)
  groups+=($!)
  # The first seed-003 start creates its virtualenv (pip), hence the long wait.
  for _ in $(seq 1 2400); do
    line=$(grep -m1 '^backend .* control ' "$tmp/backend-$kind.log" || true)
    [ -n "$line" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$line" ] || { echo "[test-wasm] backend $kind did not start:" >&2; cat "$tmp/backend-$kind.log" >&2; exit 1; }
  read -r _ _ _ url _ control <<<"$line"
  export "$var=$url" "${var}_CONTROL=$control"
}
backend plain TIDINGS_TEST_PLAIN
backend uuid TIDINGS_TEST_UUID
backend llm TIDINGS_TEST_LLM
backend seed-003 TIDINGS_TEST_SEED003
echo "[test-wasm] servers: $TIDINGS_TEST_SERVER (laggy: $TIDINGS_TEST_SERVER_LAGGY)" >&2

# Timeout per test run of the runner (seconds); the tests bound their own waits.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
for browser in $browsers; do
  case $browser in
    chromium) driver=(CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}") ;;
    firefox) driver=(GECKODRIVER="${GECKODRIVER:-$(command -v geckodriver || true)}") ;;
    *) echo "[test-wasm] unknown browser $browser (chromium | firefox)" >&2; exit 1 ;;
  esac
  echo "[test-wasm] in $browser" >&2
  started=$SECONDS
  # Only this browser's driver is set: wasm-bindgen-test-runner takes the first it finds.
  env -u CHROMEDRIVER -u GECKODRIVER -u SAFARIDRIVER "${driver[@]}" \
    cargo test -p tidings --target wasm32-unknown-unknown "$@"
  echo "[test-wasm] $browser: $((SECONDS - started)) s" >&2
done
