#!/usr/bin/env bash
# Installs what the demo and the tests need, skipping whatever is already here.
# Idempotent; safe to run on every invocation. Usage: scripts/setup.sh [--demo]
#   --demo   only what the demo needs (wasm toolchain), not the test-only tools.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: Chromium + driver (browser tests), binaryen (wasm-opt), Redis.
want=()
command -v wasm-opt >/dev/null || want+=(binaryen)
if [ "$mode" != "--demo" ]; then
  command -v chromium >/dev/null || want+=(chromium)
  command -v chromedriver >/dev/null || want+=(chromium-driver)
  command -v redis-server >/dev/null || want+=(redis-server)
  # The TLS tests make a self-signed certificate with the openssl CLI.
  command -v openssl >/dev/null || want+=(openssl)
  # The other engines (tests/engines/): Firefox ESR, WebKit's WebDriver + MiniBrowser, and a virtual display for it.
  command -v firefox-esr >/dev/null || want+=(firefox-esr)
  command -v WebKitWebDriver >/dev/null || want+=(webkit2gtk-driver)
  command -v xvfb-run >/dev/null || want+=(xvfb)
fi
if [ ${#want[@]} -gt 0 ]; then
  log "apt-get install ${want[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${want[@]}" >/dev/null
fi

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# rustfmt and clippy: the test command's first stage.
if [ "$mode" != "--demo" ]; then
  for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
  done
fi

# wasm-bindgen-cli must equal the wasm-bindgen crate version in Cargo.lock.
wb=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ -z "$wb" ]; then wb=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' sdk/Cargo.toml); fi
if ! wasm-bindgen --version 2>/dev/null | grep -qF " $wb"; then
  log "cargo install wasm-bindgen-cli =$wb (about 4 minutes)"
  cargo install wasm-bindgen-cli --version "=$wb" --quiet  # not --locked: one locked dep version is missing from the registry
fi
# wasm-pack must never download a tool: the pinned wasm-bindgen and Debian's
# wasm-opt are on PATH before it runs (scripts/build-pkg.sh checks).
command -v wasm-pack >/dev/null || { log "cargo install wasm-pack"; cargo install wasm-pack --locked --quiet; }

# Firefox's WebDriver (wasm-bindgen-test and selenium use it).
if [ "$mode" != "--demo" ] && ! command -v geckodriver >/dev/null; then
  log "cargo install geckodriver (about 3 minutes)"
  cargo install geckodriver --locked --quiet
fi

# Node packages for the browser tests (again when package.json changed since the last install).
if [ "$mode" != "--demo" ] && [ -f tests/package.json ] &&
  { [ ! -f tests/node_modules/.package-lock.json ] || [ tests/package.json -nt tests/node_modules/.package-lock.json ]; }; then
  log "npm install (tests/)"
  (cd tests && npm install --no-audit --no-fund --loglevel=error)
fi
log "ready"
