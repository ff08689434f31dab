#!/usr/bin/env bash
# Runs the live demo: builds the SDK package, then tidings-server --dev on its
# embedded defaults (SQLite under ./data, 127.0.0.1:8000) serving examples/vanilla at /.
# Extra arguments go to tidings-server (e.g. --addr 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
bash scripts/build-site.sh
# A debug build: the same cache as the tests, and no minutes of release LTO for a demo.
cargo build --quiet -p tidings-server
echo "Open http://127.0.0.1:8000/ (Ctrl-C stops the server)"
exec "${CARGO_TARGET_DIR:-target}/debug/tidings-server" --dev --static-dir target/site "$@"
