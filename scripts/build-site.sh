#!/usr/bin/env bash
# Assembles the demo site served by `tidings-server --static-dir`:
# examples/vanilla at /, the npm package (built by scripts/build-pkg.sh) at /pkg/.
# Output: target/site (or $TIDINGS_SITE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TIDINGS_SITE_DIR:-target/site}
if [ ! -f pkg/package.json ] || [ -n "$(find sdk/src sdk/Cargo.toml pkg-template -newer pkg/package.json -print -quit 2>/dev/null)" ]; then
  bash scripts/build-pkg.sh
fi
rm -rf "$out"
mkdir -p "$out/pkg"
cp -R examples/vanilla/. "$out/"
cp -R pkg/. "$out/pkg/"
echo "[site] $out ready"
