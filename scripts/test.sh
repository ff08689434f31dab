#!/usr/bin/env bash
# Runs every test: rustfmt and clippy (native and wasm32), native (server + SDK core), the SDK in headless Chromium and
# Firefox ESR (wasm-bindgen-test), the package's TypeScript types and React
# hooks, the Playwright e2e suite (demo page, the React/Vite, Next and webpack
# examples built from the packed package, CSP, multi-tab), and tab sharing,
# both transports and reload resume in Firefox ESR and WebKit (selenium-webdriver).
# Installs what is missing first. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every process this run starts inherits TIDINGS_TEST_RUN (servers, Redis, browsers,
# drivers, Xvfb, nginx, backends: spawners pass their environment on). When the run
# ends, however it ends, none of them may be left: the exit check names any that is
# still running after a 10 s grace, stops it, and fails the run.
export TIDINGS_TEST_RUN="test-$$-${EPOCHREALTIME/[.,]/}"
# Prints "PID COMMAND LINE" for every process carrying this run's marker, except this
# shell and the subshell that runs the scan (bash builtins only: nothing it spawns can
# show up in its own scan).
run_processes() {
  local environ pid kv arg cmd
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    if [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ]; then continue; fi
    {
      while IFS= read -r -d '' kv; do
        [ "$kv" = "TIDINGS_TEST_RUN=$TIDINGS_TEST_RUN" ] || continue
        cmd=""
        while IFS= read -r -d '' arg; do cmd+="$arg "; done <"/proc/$pid/cmdline"
        [ -n "$cmd" ] && echo "$pid ${cmd:0:200}"
        break
      done <"$environ"
    } 2>/dev/null || true
  done
}
check_left_processes() {
  local rc=$? left="" until=$((SECONDS + 10))
  while :; do
    left=$(run_processes)
    [ -z "$left" ] || [ "$SECONDS" -ge "$until" ] && break
    sleep 0.2
  done
  if [ -n "$left" ]; then
    echo "== FAIL: processes started by this run are still running:" >&2
    echo "$left" | sed 's/^/   /' >&2
    while read -r pid _; do kill -KILL "$pid" 2>/dev/null || true; done <<<"$left"
    exit 1
  fi
  echo "== no process started by this run is left"
  exit "$rc"
}
trap check_left_processes EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/setup.sh
# One target dir for every stage (native tests, the wasm tests' server, the package).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
target=$CARGO_TARGET_DIR

echo "== formatting and lints (rustfmt, clippy native and wasm32)"
t=$SECONDS
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p tidings --target wasm32-unknown-unknown --all-targets --quiet -- -D warnings
echo "   (fmt + clippy: $((SECONDS - t)) s)"

echo "== native tests (cargo test --workspace)"
cargo test --workspace --quiet 2>&1
cargo build --quiet -p tidings-server

if [ -f scripts/test-wasm.sh ]; then
  echo "== SDK in headless Chromium and Firefox ESR (wasm-bindgen-test)"
  t=$SECONDS
  TIDINGS_WASM_BROWSERS="chromium firefox" bash scripts/test-wasm.sh
  echo "   (SDK browser suite, both engines: $((SECONDS - t)) s)"
fi

echo "== npm package and demo site"
bash scripts/build-site.sh
bash scripts/check-size.sh
# The examples install the package as users get it: the tarball of `npm pack`,
# not a link or a folder (--no-save: package.json and the lockfile stay as they are).
t=$SECONDS
mkdir -p "$target/npm"
rm -f "$target"/npm/tidings-*.tgz
tarball=$(cd "$target/npm" && pwd)/$(npm pack ./pkg --pack-destination "$target/npm" --silent | tail -1)
for ex in examples/react examples/next examples/webpack; do
  (cd "$ex" && npm install --no-save --no-audit --no-fund --loglevel=error "$tarball")
done
echo "   (npm pack + example installs: $((SECONDS - t)) s)"

echo "== package types (tsc --strict) and React hooks (Testing Library, jsdom)"
(cd tests && npm run -s test:package)

echo "== browser e2e (Playwright on /usr/bin/chromium)"
t=$SECONDS
(cd tests && TIDINGS_SERVER_BIN="$target/debug/tidings-server" npm test)
echo "   (browser e2e: $((SECONDS - t)) s)"

echo "== tab sharing, both transports, reload resume in Firefox ESR and WebKit (selenium-webdriver)"
t=$SECONDS
(cd tests && ENGINE=firefox TIDINGS_SERVER_BIN="$target/debug/tidings-server" npm run --silent test:engines)
echo "   (Firefox ESR: $((SECONDS - t)) s)"
t=$SECONDS
# MiniBrowser needs a display: a private Xvfb for the run (xvfb-run stops it on exit).
(cd tests && ENGINE=webkit TIDINGS_SERVER_BIN="$target/debug/tidings-server" xvfb-run -a npm run --silent test:engines)
echo "   (WebKit: $((SECONDS - t)) s)"

echo "== all test stages passed"
