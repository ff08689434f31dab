#!/usr/bin/env bash
# Builds the npm package `tidings` into pkg/ at the repo root:
#   wasm-pack build sdk --target web --release (never downloads: the pinned
#   wasm-bindgen and Debian's wasm-opt must be on PATH), size-optimised,
#   wasm-opt (--merge-similar-functions -Oz -Oz), short import names
#   (scripts/short-imports.py), the glue minified (terser), merged with
#   pkg-template/. Prints the gzipped sizes.
# Usage: scripts/build-pkg.sh [--dev | --update-dts]
#   --dev         debug build, no wasm-opt
#   --update-dts  also refresh sdk/tidings.d.ts, the committed copy of the
#                 generated TypeScript API (a difference is reported on every build)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/sdk}
mode=${1:-}

want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' sdk/Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$want" ]; then
  echo "[build-pkg] need wasm-bindgen $want on PATH (have: ${have:-none}); run scripts/setup.sh" >&2
  exit 1
fi
command -v wasm-pack >/dev/null || { echo "[build-pkg] wasm-pack missing; run scripts/setup.sh" >&2; exit 1; }

# Size first: opt-level z for this build only (the workspace release profile
# already has lto + codegen-units = 1). wasm-pack's own wasm-opt step is off
# in sdk/Cargo.toml; Debian's binaryen runs below instead.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
out=$root/pkg
rm -rf "$out"
profile=--release
[ "$mode" = "--dev" ] && profile=--dev
[ "$mode" = "--update-dts" ] && mode=update-dts
# --mode no-install: use the tools on PATH, never download any. The package's
# allocator is the small one (feature small-alloc, sdk/Cargo.toml).
wasm-pack --quiet build sdk --target web $profile --mode no-install --no-pack \
  --out-dir "$out" --out-name tidings -- --features small-alloc >/dev/null

wasm=$out/tidings_bg.wasm
if [ "$mode" != "--dev" ]; then
  # Debian's binaryen (108) cannot parse what wasm-bindgen 0.2.130 emits
  # (table.fill), so wasm-opt runs on rustc's output and wasm-bindgen runs
  # again on the optimised module, dropping the name section.
  raw=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/tidings.wasm
  if command -v wasm-opt >/dev/null; then
    features="--enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Functions that differ only in constants merged first, then -Oz twice:
    # 0.7 KB less gzipped than one -Oz (other passes and orders measured: less).
    # scripts/size.sh runs the same passes (keep them in step).
    wasm-opt $features --merge-similar-functions -Oz -Oz --strip-debug --strip-producers "$raw" -o "$tmp/tidings.wasm"
    wasm-bindgen --target web --remove-name-section --remove-producers-section \
      --out-dir "$out" --out-name tidings "$tmp/tidings.wasm"
  else
    echo "[build-pkg] warning: wasm-opt not found; the wasm is not size-optimised" >&2
    wasm-bindgen --target web --remove-name-section --remove-producers-section \
      --out-dir "$out" --out-name tidings "$raw"
  fi
  # Short import names (`a`, `b`, … for `__wbg_addEventListener_f2d27251d333a631`),
  # in the wasm and the glue alike (3.6 KB less gzipped), and no target_features
  # section (78 B); no code changed.
  if command -v python3 >/dev/null; then
    python3 scripts/short-imports.py "$wasm" "$out/tidings.js"
  else
    echo "[build-pkg] warning: python3 not found; the imports keep their long names" >&2
  fi
fi

# The package's types are index.d.ts (the template); the glue's class Manager
# stays internal. Its `[Symbol.dispose]` needs TypeScript's esnext lib, which
# would break apps that type-check libraries against an older `lib`.
sed -i '/\[Symbol\.dispose\]/d' "$out/tidings.d.ts"

# Merge the template (entry, types, React and test helpers, …) over wasm-pack's output.
rm -f "$out/package.json" "$out/.gitignore"
cp -R pkg-template/. "$out/"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
sed -i "s/\"version\": \"0.0.0-template\"/\"version\": \"$version\"/" "$out/package.json"

# SSR safety: the entry and the glue must not touch window/document at import time.
for f in index.js tidings.js react.js testing.js; do
  if grep -nE '^(const|let|var)? *[A-Za-z_]* *= *(window|document|self|location|navigator)\.' "$out/$f" >/dev/null; then
    echo "[build-pkg] error: $f touches a browser global at import time" >&2
    exit 1
  fi
done
if grep -q '"env"' "$out/tidings.js"; then
  echo "[build-pkg] error: the wasm imports module \"env\"" >&2
  exit 1
fi

# The glue and its snippets minified by terser (tests/package.json, installed by
# scripts/setup.sh): whitespace, comments (its JSDoc repeats tidings.d.ts) and
# local names; the exports, the class name Manager and the `@ts-self-types`
# comment are kept. 1.6 KB less gzipped than the glue without its JSDoc. After
# the SSR check, which reads lines. Without npm (a demo machine) the glue stays
# as wasm-bindgen wrote it, which works the same.
terser=$root/tests/node_modules/.bin/terser
if [ "$mode" != "--dev" ] && [ ! -x "$terser" ] && command -v npm >/dev/null; then
  (cd tests && npm install --no-audit --no-fund --loglevel=error) >&2 || true
fi
if [ "$mode" != "--dev" ] && [ -x "$terser" ]; then
  for f in "$out/tidings.js" "$out"/snippets/*/*.js; do
    [ -f "$f" ] || continue
    "$terser" "$f" --module --compress --mangle --keep-classnames --comments '/@ts-self-types/' -o "$f.min"
    mv "$f.min" "$f"
  done
elif [ "$mode" != "--dev" ]; then
  echo "[build-pkg] note: no terser (npm missing); the glue is not minified" >&2
fi

# The public TypeScript API, diffed against the committed copy so changes are seen.
# wasm-bindgen's internal export names (__wasm_bindgen_func_elem_N) change with
# every build; they are not API and are left out of the copy and the diff.
public_dts() { grep -v '__wasm_bindgen_func_elem_' "$1"; }
if [ "$mode" = "update-dts" ]; then
  public_dts "$out/tidings.d.ts" > sdk/tidings.d.ts
elif [ "$mode" != "--dev" ] && ! diff -q sdk/tidings.d.ts <(public_dts "$out/tidings.d.ts") >/dev/null 2>&1; then
  echo "[build-pkg] note: the generated tidings.d.ts differs from sdk/tidings.d.ts (API change?):" >&2
  diff -u sdk/tidings.d.ts <(public_dts "$out/tidings.d.ts") | head -40 >&2 || true
  echo "[build-pkg] run scripts/build-pkg.sh --update-dts to accept it" >&2
fi

gz() { gzip -9 -c "$1" | wc -c; }
w=$(gz "$wasm"); j=$(gz "$out/tidings.js")
echo "[build-pkg] pkg/ ready: tidings_bg.wasm $(wc -c <"$wasm") B raw, $w B gz; tidings.js $(wc -c <"$out/tidings.js") B raw, $j B gz; wasm+glue $((w + j)) B gz"
