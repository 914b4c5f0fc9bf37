#!/usr/bin/env bash
# Regenerates link/serve.order: the functions `chaoslab serve` runs — the
# request path first (GET /, /health, /readyz, /livez, /chaos/status),
# then start-up, then shutdown — which build.rs hands to the linker
# (lld's --symbol-ordering-file) for release builds, so that they sit
# together at the start of .text instead of scattered over its 17 MB.
#
# Why: the kernel maps file pages around every fault in 64 KiB windows, so
# code spread thinly over the binary keeps far more of it resident than
# runs: about 1.5 MB of functions touched 8.7 MB of .text, most of a
# replica's idle RSS (issue 12 item 5). Packed, they touch a few windows.
#
#   link/serve-order.sh          # builds the release binary, writes link/serve.order
#
# Run it after changes to the service's start-up or hot path, then rebuild
# and check with bench/service-ceiling.sh (idle RSS). A stale list is
# harmless: symbols it names that no longer exist are ignored, functions it
# does not name are laid out after it as before. Needs valgrind (callgrind
# lists every function that ran, exactly), redis-server and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh # require, free_port, wait_for, start_redis
require "valgrind redis-server curl python3 binutils" valgrind callgrind_control redis-server curl python3 nm

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet -j 2 --bin chaoslab
    BIN=$TARGET/release/chaoslab
fi

TMP=$(mktemp -d /tmp/chaoslab-order.XXXXXX)
cleanup() {
    for pid in ${SERVE_PID:-} ${REDIS_PID:-}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM


start_redis "$TMP"
SERVE_PORT=$(free_port)
APP_HOST=127.0.0.1 APP_PORT=$SERVE_PORT REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT REPLICA_ID=serve \
    valgrind --tool=callgrind --demangle=no --compress-strings=no \
    --callgrind-out-file="$TMP/calls" "$BIN" serve >"$TMP/serve.log" 2>"$TMP/valgrind.log" &
SERVE_PID=$!
URL=http://127.0.0.1:$SERVE_PORT
wait_for 60 curl -fs "$URL/livez" # slow under callgrind
callgrind_control -d "$SERVE_PID" >/dev/null # calls.1: start-up
for round in 1 2 3; do
    for path in / /health /readyz /livez /chaos/status; do curl -s -o /dev/null "$URL$path"; done
done
sleep 2 # the 1 s sampler and idle timers run too
callgrind_control -d "$SERVE_PID" >/dev/null # calls.2: requests and idle
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true # calls: shutdown
SERVE_PID=

nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' >"$TMP/symbols"
python3 - "$TMP" "$(readlink -f "$BIN")" >link/serve.order <<'PY'
import sys
tmp, binary = sys.argv[1], sys.argv[2]
defined = set(open(f"{tmp}/symbols").read().split())
def functions(path):
    ob, seen = None, []
    for line in open(path, errors="replace"):
        if line.startswith("ob="):
            ob = line[3:].strip()
        elif line.startswith("fn=") and ob == binary:
            # callgrind marks recursion levels with 'N
            name = line[3:].strip().split("'")[0]
            if name in defined:
                seen.append(name)
    return seen
out, done = [], set()
for part in ("calls.2", "calls.1", "calls"):
    for name in functions(f"{tmp}/{part}"):
        if name not in done:
            done.add(name)
            out.append(name)
print("\n".join(out))
PY
echo "serve-order: $(wc -l <link/serve.order) functions written to link/serve.order"
