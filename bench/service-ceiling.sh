#!/usr/bin/env bash
# `chaoslab serve` against its ceiling (issue 12 item 5): the minimal axum +
# redis-rs server of crates/service/examples/ceiling.rs (same endpoints and
# JSON shapes, one multiplexed connection, one pipelined round trip per
# Redis endpoint, nothing else), both release builds, both on one private
# redis-server on a free loopback port, measured in the same run in
# alternating rounds with wrk. For each endpoint: requests/s, p99 and CPU
# per request (utime+stime from /proc/<pid>/stat over the round, divided by
# the requests wrk counted: the steadier figure on a shared machine), the
# medians of the rounds, and serve/ceiling ratios; idle RSS of both; the
# load average during the run.
#
#   bench/service-ceiling.sh    # DURATION=5s ROUNDS=5 CONNECTIONS=64 THREADS=2
#
# /health is measured uncached (HEALTH_CACHE_TTL_SECONDS=0). serve runs with
# its defaults otherwise (LOG_LEVEL=INFO, JSON logs, no export); set
# LOG_LEVEL etc. in the environment to measure another setting.
# CARGO_TARGET_DIR is honoured (default target/). SERVE_BIN and CEILING_BIN
# name other builds to measure (nothing is built then): e.g. a copy of an
# earlier `chaoslab` beside the current one, for before/after figures.
#
# Goals (issue 12 item 5): throughput ratio >= 0.80 on every endpoint, p99
# <= 1.5x the ceiling's, CPU per request <= 1.25x the ceiling's, serve's
# idle RSS < 10 MB. Needs redis-server and wrk (apt-get install -y
# redis-server wrk), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PATHS=${PATHS:-"/ /health /chaos/status"}

. bench/lib.sh # require, free_port, wait_for, start_redis
require "redis-server wrk curl python3" redis-server wrk curl python3

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${SERVE_BIN:-}" ]; then
    cargo build --release --quiet -j 2 --bin chaoslab
    SERVE_BIN=$TARGET/release/chaoslab
fi
if [ -z "${CEILING_BIN:-}" ]; then
    cargo build --release --quiet -j 2 -p chaoslab-service --example ceiling
    CEILING_BIN=$TARGET/release/examples/ceiling
fi

TMP=$(mktemp -d /tmp/chaoslab-ceiling.XXXXXX)
cleanup() {
    for pid in ${SERVE_PID:-} ${CEILING_PID:-} ${REDIS_PID:-}; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM


start_redis "$TMP"
wait_for 10 redis-cli -p "$REDIS_PORT" ping 2>/dev/null || wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $REDIS_PORT))"

SERVE_PORT=$(free_port)
APP_HOST=127.0.0.1 APP_PORT=$SERVE_PORT REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT \
    HEALTH_CACHE_TTL_SECONDS=0 REPLICA_ID=serve \
    "$SERVE_BIN" serve >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
CEILING_PORT=$(free_port)
"$CEILING_BIN" "127.0.0.1:$CEILING_PORT" "redis://127.0.0.1:$REDIS_PORT/" >"$TMP/ceiling.log" 2>&1 &
CEILING_PID=$!
wait_for 10 curl -fs "http://127.0.0.1:$SERVE_PORT/health"
wait_for 10 curl -fs "http://127.0.0.1:$CEILING_PORT/health"
# The first GET / creates the sample; both then answer the same data.
for port in $SERVE_PORT $CEILING_PORT; do
    for path in $PATHS; do curl -fs "http://127.0.0.1:$port$path" >/dev/null; done
done

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
sleep 1 # let both settle before reading their idle RSS
IDLE_SERVE=$(rss_mb "$SERVE_PID")
IDLE_CEILING=$(rss_mb "$CEILING_PID")

# wrk prints latencies as 850.00us / 1.20ms / 1.01s: normalise to ms.
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'; }
# One wrk round against `$1` (name) on port `$2`, path `$3`; appends
# "req/s p99_ms cpu_us_per_request errors" to $TMP/<name><path>.
run_round() {
    local name=$1 port=$2 path=$3 pid before after out
    pid=$([ "$name" = serve ] && echo "$SERVE_PID" || echo "$CEILING_PID")
    out="$TMP/wrk.txt"
    before=$(cpu_ticks "$pid")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port$path" >"$out"
    after=$(cpu_ticks "$pid")
    local rps p99 requests errs
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out" | ms)
    requests=$(awk '/requests in/ {print $1}' "$out")
    errs=$(awk '/Non-2xx|Socket errors/ {gsub(/ +/, " "); printf "%s;", $0}' "$out")
    awk -v r="$rps" -v p="$p99" -v n="$requests" -v t=$((after - before)) -v hz="$HZ" -v e="$errs" \
        'BEGIN {printf "%s %s %.2f %s\n", r, p, (n > 0 ? t * 1e6 / hz / n : 0), e}' \
        >>"$TMP/$name${path//\//_}"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
column_median() { awk -v c="$2" '{print $c}' "$1" | median; }

echo "machine: $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $ROUNDS alternating rounds per endpoint, medians; serve, ceiling, redis-server and wrk on this machine"
echo "serve: LOG_LEVEL=${LOG_LEVEL:-INFO (default)}, HEALTH_CACHE_TTL_SECONDS=0"
# Warm-up: a second of each, not counted.
for port in $SERVE_PORT $CEILING_PORT; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port/" >/dev/null
done
LOADS=()
for path in $PATHS; do
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then
            run_round serve "$SERVE_PORT" "$path"; run_round ceiling "$CEILING_PORT" "$path"
        else
            run_round ceiling "$CEILING_PORT" "$path"; run_round serve "$SERVE_PORT" "$path"
        fi
        LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
    done
done
IDLE_AFTER_SERVE=$(rss_mb "$SERVE_PID")
IDLE_AFTER_CEILING=$(rss_mb "$CEILING_PID")

echo
printf '%-14s %-8s %10s %9s %13s   %s\n' endpoint server "req/s" "p99 ms" "CPU µs/req" errors
FAILED=0
for path in $PATHS; do
    key=${path//\//_}
    for name in serve ceiling; do
        f="$TMP/$name$key"
        errs=$(awk '{$1=$2=$3=""; print}' "$f" | tr -s ' \n' ' ')
        printf '%-14s %-8s %10.0f %9.3f %13.2f   %s\n' "$path" "$name" \
            "$(column_median "$f" 1)" "$(column_median "$f" 2)" "$(column_median "$f" 3)" "$errs"
    done
    verdict=$(awk -v sr="$(column_median "$TMP/serve$key" 1)" -v cr="$(column_median "$TMP/ceiling$key" 1)" \
        -v sp="$(column_median "$TMP/serve$key" 2)" -v cp="$(column_median "$TMP/ceiling$key" 2)" \
        -v sc="$(column_median "$TMP/serve$key" 3)" -v cc="$(column_median "$TMP/ceiling$key" 3)" -v p="$path" 'BEGIN {
            t = sr / cr; l = sp / cp; c = sc / cc
            ok = (t >= 0.80 && l <= 1.5 && c <= 1.25)
            printf "%-14s ratios   throughput %.2f (>= 0.80)  p99 %.2fx (<= 1.5)  CPU/req %.2fx (<= 1.25)  %s\n", p, t, l, c, ok ? "met" : "NOT MET"
        }')
    echo "$verdict"
    case "$verdict" in *"NOT MET"*) FAILED=1 ;; esac
done
echo
echo "idle RSS: serve $IDLE_SERVE MB (after the run $IDLE_AFTER_SERVE MB; goal < 10), ceiling $IDLE_CEILING MB (after $IDLE_AFTER_CEILING MB)"
echo "load average (1 min) after each round: ${LOADS[*]}; after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The layout list behind the idle RSS (build.rs, link/serve-order.sh): how
# much of it this binary still has.
if command -v nm >/dev/null && [ -f link/serve.order ]; then
    listed=$(wc -l <link/serve.order)
    found=$(nm --defined-only "$SERVE_BIN" 2>/dev/null | awk '{print $3}' | sort -u | comm -12 - <(sort -u link/serve.order) | wc -l)
    echo "link/serve.order: $found of $listed listed functions are in this binary (regenerate with link/serve-order.sh when far fewer)"
fi
awk -v r="$IDLE_SERVE" 'BEGIN {exit !(r >= 10)}' && FAILED=1
exit "$FAILED"
