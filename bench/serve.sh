#!/usr/bin/env bash
# Benchmark of `chaoslab serve`: builds release, starts a private
# redis-server and the service on loopback, runs wrk (-t2 -c64 -d15s
# --latency) against /, /health and /chaos/status, and prints req/s, p50,
# p99 and the service's RSS idle and under load.
#
#   bench/serve.sh            # DURATION=15s CONNECTIONS=64 by default
#
# CARGO_TARGET_DIR is honoured (default target/).
# Needs: redis-server, wrk (apt-get install -y redis-server wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}

. bench/lib.sh # require, free_port
require "redis-server wrk" redis-server wrk

cargo build --release --quiet -j 2 --bin chaoslab
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/chaoslab
TMP=$(mktemp -d)
REDIS_PORT=$(free_port)
APP_PORT=$(free_port)

cleanup() {
    [ -n "${SVC_PID:-}" ] && kill "$SVC_PID" 2>/dev/null || true
    [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >/dev/null &
REDIS_PID=$!
APP_HOST=127.0.0.1 APP_PORT=$APP_PORT REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT LOG_LEVEL=WARNING \
    "$BIN" serve >"$TMP/service.log" 2>&1 &
SVC_PID=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$APP_PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$APP_PORT/" >/dev/null

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$SVC_PID/status"; }
sleep 1
IDLE_RSS=$(rss_mb)

echo "machine: $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, service and wrk on the same machine"
printf '%-16s %12s %10s %10s %14s\n' endpoint req/s p50 p99 "RSS under load"
for path in / /health /chaos/status; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$APP_PORT$path" >"$TMP/wrk.txt" &
    WRK=$!
    PEAK=0
    while kill -0 "$WRK" 2>/dev/null; do
        R=$(rss_mb); PEAK=$(awk -v a="$PEAK" -v b="$R" 'BEGIN {print (b > a) ? b : a}')
        sleep 0.5
    done
    wait "$WRK"
    RPS=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.txt")
    P50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk.txt")
    P99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.txt")
    ERRS=$(grep -E 'Non-2xx|Socket errors' "$TMP/wrk.txt" | tr -s ' ' || true)
    printf '%-16s %12s %10s %10s %11s MB\n' "$path" "$RPS" "$P50" "$P99" "$PEAK"
    [ -n "$ERRS" ] && echo "  $ERRS"
done
echo "idle RSS: $IDLE_RSS MB"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
