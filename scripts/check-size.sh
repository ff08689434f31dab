#!/usr/bin/env bash
# The package's size budget, checked by scripts/test.sh right after the package
# is built: fails when the gzipped (gzip -9) tidings_bg.wasm + tidings.js in
# pkg/, with the JS snippets the glue imports (snippets/), exceed BUDGET bytes.
# A size check, not a timing: it never flakes.
# Growing past the budget is a decision: see what grew with scripts/size.sh
# (twiggy), then cut it or raise the budget here in the same commit, saying why.
# Usage: scripts/check-size.sh [PKG_DIR]   (default pkg/)
set -euo pipefail
cd "$(dirname "$0")/.."
# Set at the measured 77,860 B (no JSON library, no hash maps, no str slicing
# panic, one timer closure type, options shared by Rc, wasm-opt
# --merge-similar-functions -Oz -Oz, no typed Message code, the EventInfo
# snippet, one polling task body, promise continuations instead of async
# tasks, no Message drop, no Duration::mul_f64; since the fifth pass: short
# import names, lol_alloc's free list instead of dlmalloc, a glue minified by
# terser, no target_features section) plus ~3 %; the aim is 35 KB (README, Benchmarks).
BUDGET=${TIDINGS_SIZE_BUDGET:-80300}
dir=${1:-pkg}
for f in tidings_bg.wasm tidings.js; do
  [ -f "$dir/$f" ] || { echo "[size] $dir/$f missing: run scripts/build-pkg.sh first" >&2; exit 1; }
done
gz() { gzip -9 -c "$1" | wc -c; }
w=$(gz "$dir/tidings_bg.wasm"); j=$(gz "$dir/tidings.js")
for f in "$dir"/snippets/*/*.js; do
  [ -f "$f" ] && j=$((j + $(gz "$f")))
done
total=$((w + j))
if [ "$total" -gt "$BUDGET" ]; then
  echo "[size] FAIL: wasm $w B + glue $j B = $total B gzipped, over the budget of $BUDGET B (scripts/check-size.sh); scripts/size.sh shows what grew" >&2
  exit 1
fi
echo "[size] ok: wasm $w B + glue $j B = $total B gzipped, budget $BUDGET B"
