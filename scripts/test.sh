#!/usr/bin/env bash
# Runs every test: native (server + SDK core), the SDK in headless Chromium
# (wasm-bindgen-test), and the Playwright e2e suite (demo page, React and Next
# examples, multi-tab). Installs what is missing first. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One target dir for every stage (native tests, the wasm tests' server, the package).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
target=$CARGO_TARGET_DIR

echo "== native tests (cargo test --workspace)"
cargo test --workspace --quiet 2>&1
cargo build --quiet -p tidings-server

if [ -f scripts/test-wasm.sh ]; then
  echo "== SDK in headless Chromium (wasm-bindgen-test)"
  bash scripts/test-wasm.sh
fi

echo "== npm package and demo site"
bash scripts/build-site.sh
for ex in examples/react examples/next; do
  if [ -f "$ex/package.json" ]; then
    # install-links=true (.npmrc) copies the freshly built package instead of linking it.
    (cd "$ex" && rm -rf node_modules/tidings && npm install --no-audit --no-fund --loglevel=error)
  fi
done

echo "== browser e2e (Playwright on /usr/bin/chromium)"
(cd tests && TIDINGS_SERVER_BIN="$target/debug/tidings-server" npm test)
echo "== all test stages passed"
