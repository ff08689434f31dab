#!/usr/bin/env bash
# Multi-instance load benchmark: INSTANCES tidings-server
# processes on one redis-server (loopback, no persistence), N SSE connections
# spread evenly over them by tidings-loadgen (--also-target), probes published
# through the first instance only, so every event crosses Redis to reach all N.
# Every instance's pid goes to tidings-loadgen (--server-pid, repeated), so the
# report gives server RSS summed over the instances (and each one's loaded RSS)
# and KiB per connection = (sum loaded - sum baseline) / connections held.
#
# Usage:  N=15000 INSTANCES=3 tests/loadgen/bench-redis.sh
# Environment (defaults): N=3000 INSTANCES=3 SERVER_THREADS=max(1, cores/INSTANCES)
#   WORKERS=(loadgen default) RATE=10 COUNT=50 RUN_SECS=240
#   OUT=target/bench-redis (JSON line, server logs)
# Every process it starts is killed on exit (trap).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
N="${N:-3000}"
INSTANCES="${INSTANCES:-3}"
# Worker threads per instance: the cores shared out (at least 1), so 6 instances on
# 2 cores do not fight with 12 threads.
CORES="$(nproc)"
SERVER_THREADS="${SERVER_THREADS:-$(( CORES / INSTANCES > 0 ? CORES / INSTANCES : 1 ))}"
RATE="${RATE:-10}"
COUNT="${COUNT:-50}"
RUN_SECS="${RUN_SECS:-240}"
OUT="${OUT:-$root/target/bench-redis}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/redis}"
mkdir -p "$OUT"
[[ -x /usr/bin/redis-server ]] || { echo "redis-server missing (scripts/setup.sh installs it)" >&2; exit 1; }

echo "== building (release) tidings-server and tidings-loadgen"
cargo build --quiet --release -p tidings-server -p tidings-loadgen
bin="$CARGO_TARGET_DIR/release"

pids=()        # every process started here (redis + instances), killed on exit
server_pids=() # the tidings-server instances only, in urls order
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

rport=$(free_port)
rdir=$(mktemp -d)
/usr/bin/redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$rdir" \
  --maxclients 10000 >"$OUT/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (echo PING >/dev/tcp/127.0.0.1/"$rport") 2>/dev/null && break; sleep 0.1; done

urls=()
for i in $(seq 1 "$INSTANCES"); do
  port=$(free_port)
  data=$(mktemp -d)
  TOKIO_WORKER_THREADS="$SERVER_THREADS" "$bin/tidings-server" --dev --addr "127.0.0.1:$port" --data-dir "$data" --heartbeat-secs 30 \
    --max-connections-per-user $((N + 100)) --max-streams $((N + 100)) --redis-url "redis://127.0.0.1:$rport" >"$OUT/server-$i.log" 2>&1 &
  pids+=($!)
  server_pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/api/stats" 2>/dev/null | grep -q '"healthy":true' && break
    sleep 0.1
  done
  urls+=("http://127.0.0.1:$port")
done
echo "== $INSTANCES instances on redis :$rport: ${urls[*]} (pids ${server_pids[*]})"

also=()
for u in "${urls[@]:1}"; do also+=(--also-target "$u"); done
rss=()
for p in "${server_pids[@]}"; do rss+=(--server-pid "$p"); done
timeout $((RUN_SECS + 60)) "$bin/tidings-loadgen" --target "${urls[0]}" "${also[@]}" "${rss[@]}" --connections "$N" \
  --dev-token-user bench --publish-rate "$RATE" --publish-count "$COUNT" --duration-secs "$RUN_SECS" \
  --label "redis-${INSTANCES}x" ${WORKERS:+--workers "$WORKERS"} --json-out "$OUT/redis-${INSTANCES}x-$N.json" | tee "$OUT/redis-${INSTANCES}x-$N.txt" | grep -v '^{' || true
for i in $(seq 1 "$INSTANCES"); do
  stats=$(curl -s --max-time 5 "${urls[$((i - 1))]}/api/stats" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print("unreachable")
else:
    print({k: d.get(k) for k in ("bus", "events_published", "subscribers_lagged", "connections_opened")})
' || true)
  echo "instance $i (pid ${server_pids[$((i - 1))]}) stats: $stats"
done
