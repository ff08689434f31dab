#!/usr/bin/env bash
# Fuzzing at volume, natively (stable Rust, no cargo-fuzz): generated inputs,
# FUZZ_INPUTS of them (default 10 million) for each side, through
#   - the SDK: the SSE parser (whole, byte by byte, random splits; the frames
#     must not depend on the split), every decoder, the polling-form and poll
#     answer decoders, the tab relay decoder, the protocol hello reader
#     (sdk/src/fuzz.rs);
#   - the server: the request-head reader of the stream front
#     (test-server/src/front/head/fuzz.rs).
# Nothing may panic. Prints the counts and the seed (FUZZ_SEED reproduces a run;
# default: a random one). Runs in release mode, the SDK half in FUZZ_JOBS
# processes (default 2) with seeds SEED, SEED+1, …; `cargo test` runs a short
# version of the same tests (20,000 inputs each).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
inputs=${FUZZ_INPUTS:-10000000}
seed=${FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}
jobs=${FUZZ_JOBS:-2}
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "[fuzz] building (release)" >&2
cargo test --release -p tidings --lib --no-run --quiet 2>&1 | grep -vE '^\s*(Compiling|Finished)' >&2 || true
cargo test --release -p tidings-server --lib --no-run --quiet 2>&1 | grep -vE '^\s*(Compiling|Finished)' >&2 || true

started=$SECONDS
per=$(( inputs / jobs ))
for j in $(seq 0 $((jobs - 1))); do
  n=$per
  [ "$j" = $((jobs - 1)) ] && n=$(( inputs - per * (jobs - 1) ))
  TIDINGS_FUZZ_SEED=$((seed + j)) TIDINGS_FUZZ_INPUTS=$n \
    cargo test --release -q -p tidings --lib fuzz:: -- --nocapture >"$tmp/sdk-$j.log" 2>&1 &
  pids+=($!)
done
TIDINGS_FUZZ_SEED=$seed TIDINGS_FUZZ_INPUTS=$inputs \
  cargo test --release -q -p tidings-server --lib head::fuzz:: -- --nocapture >"$tmp/server.log" 2>&1 &
pids+=($!)
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
pids=()
sdk=0
for f in "$tmp"/sdk-*.log; do
  n=$(sed -n 's/^FUZZ_SDK \([0-9]*\) inputs.*/\1/p' "$f")
  sdk=$((sdk + ${n:-0}))
done
server=$(sed -n 's/^FUZZ_SERVER \([0-9]*\) inputs.*/\1/p' "$tmp/server.log")
server=${server:-0}
if [ "$failed" != 0 ] || [ "$sdk" != "$inputs" ] || [ "$server" != "$inputs" ]; then
  cat "$tmp"/*.log >&2
  echo "[fuzz] FAILED (seed $seed): see above; rerun with FUZZ_SEED=$seed" >&2
  exit 1
fi
grep -h '^FUZZ_' "$tmp"/*.log
echo "fuzz: $sdk SDK inputs (parser whole + byte by byte + random splits, decoders, poll, relay, hello) and $server server request heads, seed $seed: no panic, split-invariant, $((SECONDS - started)) s"
