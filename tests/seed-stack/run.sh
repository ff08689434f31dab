#!/usr/bin/env bash
# Run the seed 003 stack (FastAPI + sse-starlette + broadcaster) on loopback.
#
# Usage: tests/seed-stack/run.sh [PORT] [BROADCAST_URL]
#   PORT           default 8003; the app listens on 127.0.0.1:PORT only
#   BROADCAST_URL  default memory://; e.g. redis://127.0.0.1:6379
#
# Creates (once) a virtualenv under target/seed-venv from requirements.txt,
# then execs uvicorn in this process (so `$!` of a backgrounded run.sh is
# the server's pid, which the load generator samples RSS from).
# Prints "seed-stack listening on http://127.0.0.1:PORT" before exec.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${1:-8003}"
export SEED_BROADCAST_URL="${2:-${SEED_BROADCAST_URL:-memory://}}"
venv="$root/target/seed-venv"
stamp="$venv/.requirements.sha"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" >"$stamp"
fi
cd "$here"
echo "seed-stack listening on http://127.0.0.1:$port (broadcast: $SEED_BROADCAST_URL)"
exec "$venv/bin/uvicorn" app:app --host 127.0.0.1 --port "$port" \
  --log-level warning --no-access-log --backlog 4096
