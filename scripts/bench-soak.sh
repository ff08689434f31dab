#!/usr/bin/env bash
# The long fault soak (numbers, reproducible from the printed seed):
#   SOAK_SECS=300 SOAK_SEED=<n> bash scripts/bench-soak.sh
# Defaults: 300 s, a random seed, 3 tabs per user, 24 Node clients. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --quiet -p tidings-server
bash scripts/build-site.sh >/dev/null
cd tests
seed=${SOAK_SEED:-$RANDOM$RANDOM}
exec env TIDINGS_SERVER_BIN="$CARGO_TARGET_DIR/debug/tidings-server" node soak/soak.mjs \
  --seed "$seed" --secs "${SOAK_SECS:-300}" --tabs-per-user "${SOAK_TABS:-3}" --node-clients "${SOAK_NODE_CLIENTS:-24}"
