#!/usr/bin/env bash
# Memory per idle stream over HTTP/2 (tidings-server --tls-cert/--tls-key, hyper) beside
# the plain stream hub, in one run: tests/bench/h2.mjs against a release build, a fresh
# server per setup, loopback only, a self-signed certificate made by the openssl CLI.
#
#   bash scripts/bench-h2.sh                            # N=10000; plain, h2 with 1, 8, 100 streams per connection
#   N=2000 SETUPS="plain h2:100" bash scripts/bench-h2.sh
#
# Prints one JSON line per setup, then a table (KiB per stream = RSS growth / N).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
echo "== building (release) tidings-server"
cargo build --quiet --release -p tidings-server
cd tests
TIDINGS_SERVER_BIN="$CARGO_TARGET_DIR/release/tidings-server" node bench/h2.mjs
