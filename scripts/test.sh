#!/usr/bin/env bash
# Runs every test: native (server + SDK core), wasm in headless Chromium,
# and the Playwright browser e2e suite. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== native tests (cargo test --workspace)"
cargo test --workspace --quiet 2>&1

if [ -f scripts/test-wasm.sh ]; then
  echo "== SDK in headless Chromium (wasm-bindgen-test)"
  bash scripts/test-wasm.sh
fi

if [ -f tests/package.json ]; then
  echo "== browser e2e (Playwright on /usr/bin/chromium)"
  (cd tests && npm test)
fi
echo "== all test stages passed"
