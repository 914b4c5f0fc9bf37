#!/usr/bin/env bash
# User-space instructions per request of the ingress and of the proxy
# ceiling, counted with callgrind — a figure that holds still on a shared,
# noisy machine where req/s and CPU time do not. Builds release, starts a
# private redis-server and `chaoslab serve` on loopback, then, in turn,
# the ingress alone (crates/ingress/examples/standalone.rs: `chaoslab up`
# cannot run under valgrind) and the ceiling
# (crates/ingress/examples/proxy_ceiling.rs) under
# `valgrind --tool=callgrind` in front of it; warms each up with wrk,
# counts instructions over a second wrk run, prints instructions per
# request and the functions that cost most (self cost, per request).
#
#   bench/ingress-instructions.sh      # DURATION=3 CONNECTIONS=4 PATHS="/livez /" TOP=15
#
# Both run on one thread with the system allocator (the `chaoslab` binary
# uses mimalloc), so the figures compare code, not allocators. Needs
# valgrind, redis-server, wrk and curl (apt-get install -y valgrind
# redis-server wrk curl).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-4}
PATHS=${PATHS:-"/livez /"}
TOP=${TOP:-15}

. bench/lib.sh # require, free_port, wait_for, start_redis
require "valgrind redis-server wrk curl" valgrind callgrind_control callgrind_annotate redis-server wrk curl python3

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -j 2 --bin chaoslab
cargo build --release --quiet -j 2 -p chaoslab-ingress --example standalone --example proxy_ceiling
TMP=$(mktemp -d /tmp/chaoslab-ingress-instructions.XXXXXX)
cleanup() {
    for pid in ${PROXY_PID:-} ${SERVICE_PID:-} ${REDIS_PID:-}; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

start_redis "$TMP"
SERVICE_PORT=$(free_port)
APP_HOST=127.0.0.1 APP_PORT=$SERVICE_PORT REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT LOG_LEVEL=WARNING \
    "$TARGET/release/chaoslab" serve >"$TMP/service.log" 2>&1 &
SERVICE_PID=$!
wait_for 30 curl -fs "http://127.0.0.1:$SERVICE_PORT/livez"

# count NAME PATH COMMAND...: instructions per request of COMMAND (a proxy
# taking LISTEN and UPSTREAM addresses after it) on PATH.
count() {
    local name=$1 path=$2 port out
    shift 2
    port=$(free_port)
    out="$TMP/callgrind.$name"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$@" "127.0.0.1:$port" "127.0.0.1:$SERVICE_PORT" >"$TMP/$name.log" 2>"$TMP/$name.valgrind" &
    PROXY_PID=$!
    wait_for 120 curl -fs "http://127.0.0.1:$port/livez"
    wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port$path" >/dev/null
    callgrind_control -i on "$PROXY_PID" >/dev/null 2>&1
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$port$path" >"$TMP/wrk.txt"
    callgrind_control -i off "$PROXY_PID" >/dev/null 2>&1
    callgrind_control -d "$PROXY_PID" >/dev/null 2>&1
    kill -KILL "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=
    # The dump taken on request is the file with a part number.
    local dump requests total
    dump=$(ls "$out".* 2>/dev/null | head -1)
    requests=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
    total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    PER_REQUEST=$((total / requests))
    printf '%-8s %-8s %10d instructions/request (%d requests)\n' "$path" "$name" "$PER_REQUEST" "$requests"
    callgrind_annotate --inclusive=no "$dump" 2>/dev/null | sed -n '/^Ir/,$p' | awk -v n="$requests" -v top="$TOP" '
        NR > 2 && $1 ~ /^[0-9,]+$/ && !/PROGRAM TOTALS/ && shown < top {
            ir = $1; gsub(",", "", ir); sub(/^[^)]*\) */, ""); sub(/ \[.*$/, "")
            sub(/^[^ ]*\.(rs|S|c|h):/, ""); sub(/^\?\?\?:/, "")
            printf "           %8d  %s\n", ir / n, substr($0, 1, 110); shown++
        }'
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNECTIONS ${DURATION}s under callgrind, one upstream: chaoslab serve + redis-server"
for path in $PATHS; do
    count ingress "$path" "$TARGET/release/examples/standalone"
    INGRESS=$PER_REQUEST
    count ceiling "$path" "$TARGET/release/examples/proxy_ceiling"
    CEILING=$PER_REQUEST
    awk -v i="$INGRESS" -v c="$CEILING" -v p="$path" 'BEGIN { printf "%-8s ingress/ceiling %.2f\n", p, i / c }'
done
