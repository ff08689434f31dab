#!/usr/bin/env python3
"""Gives the wasm's imports short names, in the wasm and in its JS glue alike.

wasm-bindgen names each import after the JS it calls plus a 16-digit hash
(`__wbg_addEventListener_f2d27251d333a631`) and puts every one of them, under
the module `./tidings_bg.js`, in the wasm's import section and as a key of the
glue's imports object. The hashes do not compress, and every name is shipped
twice. This renames module and fields to short names (`a`, `b`, ...) in both
files, and drops the wasm's `target_features` custom section (what wasm-bindgen
reads to choose its ABI, already read; browsers ignore custom sections);
nothing else in either file changes (the code and the exports stay as they are).

Usage: short-imports.py WASM JS   (both rewritten in place)
Fails, changing nothing, when the glue does not hold each import name exactly
once as a key of the imports object, or the module name exactly once.
"""
import re
import string
import sys

MODULE = "./tidings_bg.js"
ALPHABET = string.ascii_letters + "_$"


def leb(data, pos):
    """An unsigned LEB128 at pos: (value, position after it)."""
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def to_leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def name(data, pos):
    n, pos = leb(data, pos)
    return data[pos : pos + n].decode(), pos + n


def enc_name(s):
    b = s.encode()
    return to_leb(len(b)) + b


def limits(data, pos):
    flags = data[pos]
    pos += 1
    _, pos = leb(data, pos)
    if flags & 1:
        _, pos = leb(data, pos)
    return pos


def short(i):
    """a, b, ..., $, aa, ab, ... (object keys: a keyword like `do` is fine)."""
    s = ""
    while True:
        s = ALPHABET[i % len(ALPHABET)] + s
        i = i // len(ALPHABET) - 1
        if i < 0:
            return s


def main(wasm_path, js_path):
    data = open(wasm_path, "rb").read()
    js = open(js_path, encoding="utf-8").read()
    assert data[:8] == b"\0asm\1\0\0\0", "not a wasm module"
    pos, out, renames = 8, bytearray(data[:8]), {}
    while pos < len(data):
        sid = data[pos]
        size, body = leb(data, pos + 1)
        end = body + size
        if sid == 0 and name(data, body)[0] == "target_features":
            pos = end
            continue
        if sid != 2:
            out += data[pos:end]
            pos = end
            continue
        count, p = leb(data, body)
        section = bytearray(to_leb(count))
        for _ in range(count):
            module, p = name(data, p)
            field, p = name(data, p)
            kind = data[p]
            start = p + 1
            if kind == 0:  # function: type index
                _, p = leb(data, start)
            elif kind == 1:  # table: reference type, limits
                p = limits(data, start + 1)
            elif kind == 2:  # memory: limits
                p = limits(data, start)
            elif kind == 3:  # global: value type, mutability
                p = start + 2
            elif kind == 4:  # tag: attribute, type index
                _, p = leb(data, start + 1)
            else:
                sys.exit(f"[short-imports] unknown import kind {kind}")
            if module == MODULE:
                if field not in renames:
                    renames[field] = short(len(renames))
                module, field = "a", renames[field]
            section += enc_name(module) + enc_name(field) + bytes([kind]) + data[start:p]
        assert p == end, "import section not read to its end"
        out += bytes([2]) + to_leb(len(section)) + section
        pos = end
    if not renames:
        sys.exit("[short-imports] no imports of " + MODULE)
    for old, new in renames.items():
        key = re.compile(r"^(\s+)" + re.escape(old) + r":", re.M)
        hits = len(key.findall(js)) if old in js else 0
        if hits != 1 or len(re.findall(r"\b" + re.escape(old) + r"\b", js)) != 1:
            sys.exit(f"[short-imports] {old} is not exactly one key of the glue's imports")
        js = key.sub(lambda m: m.group(1) + new + ":", js)
    quoted = '"' + MODULE + '": '
    if js.count(quoted) != 1:
        sys.exit("[short-imports] the glue does not name " + MODULE + " exactly once")
    js = js.replace(quoted, "a: ")
    open(wasm_path, "wb").write(out)
    open(js_path, "w", encoding="utf-8").write(js)
    print(f"[short-imports] {len(renames)} imports renamed", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
