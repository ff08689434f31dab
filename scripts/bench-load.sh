#!/usr/bin/env bash
# Load benchmark: tidings-server vs the seed 003 stack
# (FastAPI + sse-starlette + broadcaster), side by side, on loopback.
#
# Usage:
#   scripts/bench-load.sh                      # N = 1000 connections per stack
#   N=10000 scripts/bench-load.sh              # 10k
#   N=19000 STACKS=tidings scripts/bench-load.sh   # 19k, one tidings instance only
#   N=10000 STACKS="tidings tidings-mux" scripts/bench-load.sh
#                                              # 10k plain vs 10k multiplexed connections
#   scripts/bench-load.sh 10000                # N as the first argument also works
#
# Environment (defaults):
#   N=1000            SSE connections per stack (one server process each;
#                     at most ~19,000: the open-files hard limit is 20,000)
#   STACKS="tidings seed"   which stacks to run, in that order; `tidings-mux`:
#                     tidings-server with every connection one /api/mux
#                     request carrying MUX streams (channel `test`, where the
#                     probes go, and MUX-1 other channels)
#   MUX=8             streams per multiplexed connection
#   RATE=10 COUNT=50  probes published per second / in total
#   RUN_SECS=240      hard cap per run (the generator stops itself; the
#                     script kills it 60 s later at the latest)
#   OUT=target/bench-load   JSON results and server logs
#
# For each stack: start a fresh server (tidings-server --dev, release
# build, fresh data dir, --max-connections-per-user N+100,
# --heartbeat-secs 30; the seed stack via tests/seed-stack/run.sh on a
# free port, memory:// broadcaster), run tidings-loadgen against
# /api/v1/events/test with --server-pid, stop the server. Then print a
# comparison table with ratios (seed / tidings). Servers are killed on
# exit (trap), whatever happens.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
N="${1:-${N:-1000}}"
STACKS="${STACKS:-tidings seed}"
RATE="${RATE:-10}"
COUNT="${COUNT:-50}"
RUN_SECS="${RUN_SECS:-240}"
OUT="${OUT:-$root/target/bench-load}"
MUX="${MUX:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/loadgen}"
mkdir -p "$OUT"

echo "== building (release) tidings-server and tidings-loadgen"
cargo build --quiet --release -p tidings-server -p tidings-loadgen
bin="$CARGO_TARGET_DIR/release"

server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_line FILE REGEX SECS: prints the first matching line.
wait_for_line() {
  local file="$1" re="$2" secs="$3" i
  for ((i = 0; i < secs * 10; i++)); do
    if grep -Eo "$re" "$file" 2>/dev/null | head -1 | grep .; then return 0; fi
    if [[ -n "$server_pid" ]] && ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "server did not start; log:" >&2
  tail -20 "$file" >&2
  return 1
}

run_loadgen() { # label url extra-args...
  local label="$1" url="$2"
  shift 2
  echo "== $label: $N connections against $url (server pid $server_pid)"
  timeout $((RUN_SECS + 60)) "$bin/tidings-loadgen" --target "$url" --connections "$N" \
    --server-pid "$server_pid" --publish-rate "$RATE" --publish-count "$COUNT" \
    --duration-secs "$RUN_SECS" --label "$label" --json-out "$OUT/$label-$N.json" "$@" \
    | tee "$OUT/$label-$N.txt" | grep -v '^{' || true
}

for stack in $STACKS; do
  case "$stack" in
    tidings)
      data="$(mktemp -d "$OUT/tidings-data.XXXXXX")"
      log="$OUT/tidings-server-$N.log"
      "$bin/tidings-server" --dev --addr 127.0.0.1:0 --data-dir "$data" \
        --max-connections-per-user $((N + 100)) --max-streams $((N + 100)) --heartbeat-secs 30 >"$log" 2>&1 &
      server_pid=$!
      disown "$server_pid" # no job-control chatter when it is killed
      url="$(wait_for_line "$log" 'http://127\.0\.0\.1:[0-9]+' 30)"
      run_loadgen tidings "$url" --dev-token-user bench
      cleanup
      rm -rf "$data"
      ;;
    tidings-mux)
      data="$(mktemp -d "$OUT/tidings-data.XXXXXX")"
      log="$OUT/tidings-mux-server-$N.log"
      # Every stream of a multiplexed connection counts against the user's limit; the
      # connection counts once against --max-streams (it is one socket), as in the
      # plain run.
      "$bin/tidings-server" --dev --addr 127.0.0.1:0 --data-dir "$data" \
        --max-connections-per-user $((N * MUX + 100)) --max-streams $((N + 100)) \
        --heartbeat-secs 30 >"$log" 2>&1 &
      server_pid=$!
      disown "$server_pid"
      url="$(wait_for_line "$log" 'http://127\.0\.0\.1:[0-9]+' 30)"
      streams="/api/v1/events/test"
      for ((k = 1; k < MUX; k++)); do streams="$streams,/api/v1/events/bench.$k"; done
      run_loadgen "tidings-mux$MUX" "$url" --dev-token-user bench \
        --stream-path "/api/mux?streams=$streams" --publish-path /api/v1/events/test
      cleanup
      rm -rf "$data"
      ;;
    seed)
      port="$(free_port)"
      log="$OUT/seed-stack-$N.log"
      tests/seed-stack/run.sh "$port" memory:// >"$log" 2>&1 &
      server_pid=$!
      disown "$server_pid"
      wait_for_line "$log" 'seed-stack listening' 300 >/dev/null
      for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/openapi.json" && break
        sleep 0.2
      done
      run_loadgen seed-003 "http://127.0.0.1:$port"
      cleanup
      ;;
    *) echo "unknown stack $stack (tidings|tidings-mux|seed)" >&2; exit 2 ;;
  esac
  sleep 2 # let TIME_WAIT sockets and memory settle between runs
done

echo
echo "== comparison at N = $N (ratio = seed-003 / tidings)"
python3 - "$OUT/tidings-$N.json" "$OUT/seed-003-$N.json" <<'PY'
import json, sys

def load(path):
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None

t, s = load(sys.argv[1]), load(sys.argv[2])
def get(r, *keys):
    for k in keys:
        if r is None:
            return None
        r = r.get(k)
    return r
rows = [
    ("connections held", ("connections_held",), 1, "{:.0f}"),
    ("connect time s", ("connect_secs",), 1, "{:.2f}"),
    ("server RSS loaded MiB", ("server_rss_loaded_kib",), 1 / 1024, "{:.1f}"),
    ("server KiB / conn", ("server_kib_per_conn",), 1, "{:.2f}"),
    ("events published", ("events_published",), 1, "{:.0f}"),
    ("completeness %", ("completeness",), 100, "{:.3f}"),
    ("conns missing events", ("conns_missing",), 1, "{:.0f}"),
    ("duplicates", ("duplicates",), 1, "{:.0f}"),
    ("latency p50 ms", ("latency_us", "p50"), 1e-3, "{:.2f}"),
    ("latency p99 ms", ("latency_us", "p99"), 1e-3, "{:.2f}"),
    ("latency max ms", ("latency_us", "max"), 1e-3, "{:.2f}"),
    ("fan-out one event ms", ("first_fanout_us",), 1e-3, "{:.2f}"),
    ("fan-out p50 ms", ("fanout_us", "p50"), 1e-3, "{:.2f}"),
    ("fan-out max ms", ("fanout_us", "max"), 1e-3, "{:.2f}"),
]
print(f"| {'metric':<24} | {'tidings':>12} | {'seed-003':>12} | {'ratio':>7} |")
print(f"| {'-'*24} | {'-'*12}:| {'-'*12}:| {'-'*7}:|")
for name, keys, scale, fmt in rows:
    a, b = get(t, *keys), get(s, *keys)
    fa = fmt.format(a * scale) if a is not None else "-"
    fb = fmt.format(b * scale) if b is not None else "-"
    ratio = f"{b / a:.2f}x" if a and b else "-"
    print(f"| {name:<24} | {fa:>12} | {fb:>12} | {ratio:>7} |")
PY
