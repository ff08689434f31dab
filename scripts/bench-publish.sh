#!/usr/bin/env bash
# Publish -> delivery latency and publish throughput on one stream:
# tidings-server (release, --dev, fresh SQLite file) against nginx + nchan
# (Debian's nginx-light and libnginx-mod-nchan, one worker), in the same run.
#
# Usage:
#   scripts/bench-publish.sh
#
# Environment (defaults):
#   RATES=200,600,1000   publish rates, events/s, one stream
#   SECS=10              seconds of publishing per rate
#   SOCKETS=4            kept-alive publisher sockets in the rate phases
#   TP_SECS=5            seconds of the throughput phase (publish back to back)
#   TP_SOCKETS=32        kept-alive publisher sockets in the throughput phase
#   SERVERS="tidings tidings-redis nchan"   which servers to run, in that order
#                        (tidings-redis: --redis-url on a redis-server with
#                        appendonly yes, appendfsync always; tidings-before and
#                        tidings-redis-before: $BEFORE_BIN, with SQLite or Redis,
#                        to compare two builds in one run)
#   REDIS_FSYNC=always   redis-server's appendfsync for tidings-redis: always (every
#                        answer after an fsync of the AOF) or no (every answer after
#                        the AOF write, not fsynced: what survives killing Redis or
#                        the server, as with the SQLite path's WAL; not an OS crash)
#   TIDINGS_BIN=<built>  another tidings-server binary to measure (e.g. an older build)
#   BEFORE_BIN=<path>    the tidings-server binary of tidings-before
#   OUT=target/bench-publish  output and server logs
#   PROFILE=1            perf record -g the server over the throughput phase
#                        (into $OUT/<server>.perf.data)
#
# After the throughput phase each server's CPU time over it (user + system, from
# /proc, nginx's worker included) is printed per acknowledged publish: a figure
# that holds on a busy box, where the load generator shares the cores. With Redis,
# redis-server's CPU time is printed beside it ("redis cpu").
#
# Each server runs alone (the other is stopped), with one SSE subscriber on
# the stream. tidings-pubbench (tests/loadgen) publishes timestamped probes
# at each rate and prints publish -> delivery p50 / p99 / max, then publishes
# back to back for TP_SECS and prints acknowledged publishes per second.
# Everything started here is stopped on every exit path (trap).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
RATES="${RATES:-200,600,1000}"
SECS="${SECS:-10}"
SOCKETS="${SOCKETS:-4}"
TP_SECS="${TP_SECS:-5}"
TP_SOCKETS="${TP_SOCKETS:-32}"
SERVERS="${SERVERS:-tidings tidings-redis nchan}"
REDIS_FSYNC="${REDIS_FSYNC:-always}"
case "$REDIS_FSYNC" in always|no) ;; *) echo "REDIS_FSYNC must be always or no" >&2; exit 2 ;; esac
OUT="${OUT:-$root/target/bench-publish}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$OUT"

nchan_module=/usr/lib/nginx/modules/ngx_nchan_module.so
if [[ " $SERVERS " == *" nchan "* ]] && ! { command -v nginx >/dev/null && [[ -f $nchan_module ]]; }; then
  echo "== installing nginx-light and libnginx-mod-nchan"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null
  # Debian may start its own nginx on port 80; this benchmark runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl stop nginx || true
  fi
fi

if [[ -n "${PROFILE:-}" ]] && ! command -v perf >/dev/null; then
  echo "== installing perf (PROFILE=1)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi

echo "== building (release) tidings-server and tidings-pubbench"
cargo build --quiet --release -p tidings-server -p tidings-loadgen
bin="$CARGO_TARGET_DIR/release"

tmp="$(mktemp -d)"
chmod 755 "$tmp"
pid=""
redis_pid=""
perf_pid=""
stop() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
stop_redis() {
  if [[ -n "$redis_pid" ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  redis_pid=""
}
cleanup() {
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  stop
  stop_redis
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 10 s).
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}

# cpu_ticks PID: user + system CPU time of PID and its children (nginx's worker),
# in clock ticks, from /proc.
cpu_ticks() {
  local total=0 p fields
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    # Fields after the command name: utime and stime are the 12th and 13th.
    fields="$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null)" || continue
    set -- $fields
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

pubbench() { # label target extra-args...
  local label="$1" target="$2" before after rbefore rafter acked
  shift 2
  echo "== $label"
  echo "$label  load average $(cut -d' ' -f1-3 /proc/loadavg) at start${redis_pid:+  (redis appendfsync $REDIS_FSYNC)}" | tee "$OUT/$label.txt"
  timeout $((SECS * 6 + 300)) "$bin/tidings-pubbench" --label "$label" --target "$target" \
    --rates "$RATES" --secs-per-rate "$SECS" --sockets "$SOCKETS" \
    --throughput-secs 0 "$@" | tee -a "$OUT/$label.txt"
  # The throughput phase on its own, so the server's CPU time over it can be read.
  perf_pid=""
  if [[ -n "${PROFILE:-}" ]]; then
    perf record -q -F 1999 -g -p "$pid" -o "$OUT/$label.perf.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
  fi
  before="$(cpu_ticks "$pid")"
  rbefore="$(if [[ -n "$redis_pid" ]]; then cpu_ticks "$redis_pid"; else echo 0; fi)"
  timeout $((TP_SECS + 300)) "$bin/tidings-pubbench" --label "$label" --target "$target" \
    --rates 0 --throughput-secs "$TP_SECS" --throughput-sockets "$TP_SOCKETS" "$@" \
    | tee -a "$OUT/$label.txt"
  after="$(cpu_ticks "$pid")"
  rafter="$(if [[ -n "$redis_pid" ]]; then cpu_ticks "$redis_pid"; else echo 0; fi)"
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
    echo "$label  profile: perf report -i $OUT/$label.perf.data"
  fi
  acked="$(sed -n 's/.*  throughput .*  acked \([0-9]*\) .*/\1/p' "$OUT/$label.txt" | tail -1)"
  if [[ -n "$acked" && "$acked" -gt 0 ]]; then
    python3 -c 'import sys; t, hz, n, label = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"{label}  server cpu  {t / hz:.2f} s over the throughput phase  {t / hz / n * 1e6:.1f} us per acked publish")' \
      "$((after - before))" "$(getconf CLK_TCK)" "$acked" "$label" | tee -a "$OUT/$label.txt"
    if [[ -n "$redis_pid" ]]; then
      python3 -c 'import sys; t, hz, n, label = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"{label}  redis cpu  {t / hz:.2f} s over the throughput phase  {t / hz / n * 1e6:.1f} us per acked publish")' \
        "$((rafter - rbefore))" "$(getconf CLK_TCK)" "$acked" "$label" | tee -a "$OUT/$label.txt"
    fi
  fi
}

run_tidings() { # [label binary]
  local port label="${1:-tidings}" server="${2:-${TIDINGS_BIN:-$bin/tidings-server}}"
  port="$(free_port)"
  "$server" --dev --addr "127.0.0.1:$port" --data-dir "$tmp/$label" \
    --subscriber-queue 65536 >"$OUT/$label.log" 2>&1 &
  pid=$!
  wait_port "$port"
  pubbench "$label" "http://127.0.0.1:$port" --dev-token-user bench \
    --publish-path /api/v1/events/bench --stream-path /api/v1/events/bench
  stop
}

# The same with the Redis bus: every acknowledged event is in Redis's AOF, fsynced
# with REDIS_FSYNC=always (the default); publishes that arrive together share one
# script call, and calls in flight together share Redis's write (and fsync).
run_tidings_redis() { # [label binary]
  local port rport label="${1:-tidings-redis}" server="${2:-${TIDINGS_BIN:-$bin/tidings-server}}"
  command -v redis-server >/dev/null || bash scripts/setup.sh
  rport="$(free_port)"
  mkdir -p "$tmp/$label-redis"
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$REDIS_FSYNC" \
    --dir "$tmp/$label-redis" >"$OUT/$label-redis-server.log" 2>&1 &
  redis_pid=$!
  wait_port "$rport"
  # Listening is not ready: while it loads its (empty) AOF, Redis answers LOADING,
  # and a publish then gets 503.
  for _ in $(seq 100); do
    [[ "$(redis-cli -p "$rport" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
  done
  port="$(free_port)"
  "$server" --dev --addr "127.0.0.1:$port" --data-dir "$tmp/$label" \
    --redis-url "redis://127.0.0.1:$rport" --subscriber-queue 65536 >"$OUT/$label.log" 2>&1 &
  pid=$!
  wait_port "$port"
  pubbench "$label" "http://127.0.0.1:$port" --dev-token-user bench \
    --publish-path /api/v1/events/bench --stream-path /api/v1/events/bench
  stop
  stop_redis
}

run_nchan() {
  local port
  port="$(free_port)"
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx/nginx.conf" <<EOF
load_module $nchan_module;
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location = /pub {
      nchan_publisher;
      nchan_channel_id \$arg_id;
      nchan_message_buffer_length 1000;
    }
    location = /sub {
      nchan_subscriber eventsource;
      nchan_channel_id \$arg_id;
    }
  }
}
EOF
  nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$OUT/nginx.log" 2>&1 &
  pid=$!
  wait_port "$port"
  pubbench nchan "http://127.0.0.1:$port" --publish-path '/pub?id=bench' --stream-path '/sub?id=bench'
  stop
}

for s in $SERVERS; do
  case "$s" in
    tidings) run_tidings ;;
    tidings-before)
      [[ -x "${BEFORE_BIN:-}" ]] || { echo "tidings-before needs BEFORE_BIN=<tidings-server binary>" >&2; exit 2; }
      run_tidings tidings-before "$BEFORE_BIN" ;;
    tidings-redis) run_tidings_redis ;;
    tidings-redis-before)
      [[ -x "${BEFORE_BIN:-}" ]] || { echo "tidings-redis-before needs BEFORE_BIN=<tidings-server binary>" >&2; exit 2; }
      run_tidings_redis tidings-redis-before "$BEFORE_BIN" ;;
    nchan) run_nchan ;;
    *) echo "unknown server $s (tidings, tidings-before, tidings-redis, tidings-redis-before, nchan)" >&2; exit 2 ;;
  esac
done
echo "== summary (publish -> delivery on one stream; acknowledged publishes/s)"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SERVERS; do grep -E '  (load average|rate|throughput|server cpu|redis cpu) ' "$OUT/$s.txt" || true; done
