#!/usr/bin/env bash
# Where the package's bytes go: builds the npm package (scripts/build-pkg.sh),
# then the same wasm once more with its function names kept (the wasm-opt passes of build-pkg.sh and -g,
# wasm-bindgen without --remove-name-section, short import names: the code is
# byte for byte the shipped code, only the name section is added), and prints
#   - the gzipped sizes of the shipped wasm and JS glue (gzip -9),
#   - twiggy's top contributors (function by function),
#   - the code bytes summed per crate / module (names from twiggy's CSV).
# Usage: scripts/size.sh [TOP]   (TOP functions listed, default 25)
# Installs twiggy (`cargo install twiggy`) when it is missing; scripts/setup.sh
# does not, as only this script uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/sdk}
top=${1:-25}
command -v twiggy >/dev/null || { echo "[size] cargo install twiggy (a few minutes)" >&2; cargo install twiggy --locked --quiet; }

bash scripts/build-pkg.sh >&2
raw=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/tidings.wasm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
features="--enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types"
wasm-opt $features --merge-similar-functions -Oz -Oz -g --strip-producers "$raw" -o "$tmp/named.wasm"
wasm-bindgen --target web --remove-producers-section --out-dir "$tmp/out" --out-name tidings "$tmp/named.wasm"
named=$tmp/out/tidings_bg.wasm
# The short import names of the shipped wasm (build-pkg.sh), so the imports count as shipped.
python3 scripts/short-imports.py "$named" "$tmp/out/tidings.js" 2>/dev/null

gz() { gzip -9 -c "$1" | wc -c; }
w=$(gz pkg/tidings_bg.wasm); j=$(gz pkg/tidings.js)
echo "== package (shipped files, gzip -9)"
echo "tidings_bg.wasm  $(wc -c <pkg/tidings_bg.wasm) B raw  $w B gz"
echo "tidings.js       $(wc -c <pkg/tidings.js) B raw  $j B gz"
echo "wasm + glue      $((w + j)) B gz"
echo
echo "== twiggy top $top (code bytes of the shipped wasm; its name section is not shipped)"
twiggy top -n "$top" "$named" | grep -v 'function names\|data names\|local names\|custom section .name'
echo
echo "== code bytes per crate / module (twiggy, summed)"
twiggy top -f csv -n 1000000 "$named" | python3 -c '
import csv, re, sys
rows = list(csv.reader(sys.stdin))[1:]
sums, total = {}, 0
def group(name):
    if "names\" subsection" in name or name.startswith("custom section"):
        return None
    if name.startswith("data segment") or name.startswith("data["):
        return "data (strings, tables)"
    if name.startswith("import "):
        return "imports (wasm-bindgen)"
    if name.startswith("code[") or name.startswith("elem") or name.startswith("table"):
        return "unnamed"
    if re.match(r"^[A-Za-z0-9_]+_[0-9a-f]{16}$", name) or name.startswith("__wbg") or name.startswith("__wbindgen") or name.startswith("__externref"):
        return "wasm-bindgen exports/shims"
    if name.startswith("__rust") or name.startswith("__rdl") or name.startswith("__rg"):
        return "alloc"
    if "::" not in name and not name.startswith("<"):
        return "JS API entry points (exports)"
    n = re.sub(r"\[[0-9a-f]+\]", "", name)
    while n.startswith("<"):
        n = n[1:]
    n = re.sub(r"^(&mut |&|dyn |impl )", "", n)
    m = re.match(r"^([A-Za-z0-9_]+)>?( as ([^<>]+))?", n)
    if m and "::" not in m.group(1) and not n.startswith(m.group(1) + "::"):
        # A primitive or generic type: the crate of the trait (<f64 as core::fmt::Display>).
        n = (m.group(3) or "core::")
    parts = n.split("::")
    crate = parts[0]
    if crate == "tidings" and len(parts) > 2:
        crate = "::".join(parts[:3] if parts[1] == "web" else parts[:2])
        if not re.match(r"^[a-z_:]+$", crate):
            crate = "::".join(parts[:2])
    return crate
for r in rows:
    g = group(r[0])
    if g is None:
        continue
    size = int(r[1])
    total += size
    sums[g] = sums.get(g, 0) + size
for g, s in sorted(sums.items(), key=lambda x: -x[1])[:30]:
    print(f"{s:>8}  {100*s/total:5.1f}%  {g}")
print(f"{total:>8}  100.0%  total (code + data, no names)")
'
