#!/usr/bin/env bash
# Benchmark of the TCP fault proxy (crates/faultproxy), in one run:
#  1. redis-benchmark GET/INCR, 50 clients, unpipelined and -P 16, straight
#     to a private redis-server (TCP loopback, as a replica would connect
#     with no proxy) and through the fault proxy (no fault; its upstream
#     leg over Redis's Unix socket as the lab's, or TCP: UPSTREAM),
#     alternating direct/proxy within each round, ROUNDS rounds. Prints per
#     round the ops/s of both, their ratio, the load average, and the CPU
#     time per operation of the proxy, redis-server and redis-benchmark
#     (utime+stime deltas from /proc/<pid>/stat over the round: steadier
#     than ops/s on a shared machine); then the median ratio per pipeline
#     against the target (>= 80 % of direct, issue 13 item 5) and the ratio
#     the CPU figures predict on a CPU-saturated machine.
#  2. how soon a fault takes effect after its API call returns (target:
#     within 100 ms), and how soon clearing restores flow.
# Env: ROUNDS (3), REQUESTS (200000), TRIALS (20), THREADS (2),
#      RUNTIME=dedicated|shared, UPSTREAM=unix|tcp (the proxy's upstream
#      leg: unix, the lab's in process isolation, or TCP loopback),
#      CARGO_TARGET_DIR (where the release build goes; default target),
#      PROXY_BIN (use this proxy binary, no build).
# Needs redis-server, redis-cli, redis-benchmark. Loopback only; everything
# it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
TRIALS=${TRIALS:-20}
THREADS=${THREADS:-2}
# dedicated: connections on the fault proxy's own thread (FaultProxy::dedicated,
# what the lab uses); shared: on the program's THREADS-worker runtime.
RUNTIME=${RUNTIME:-dedicated}
UPSTREAM=${UPSTREAM:-unix}
case "$UPSTREAM" in unix | tcp) ;; *) echo "UPSTREAM must be unix or tcp, not $UPSTREAM" >&2; exit 2 ;; esac
TARGET=${CARGO_TARGET_DIR:-target}

echo "== faultproxy bench: $(date -u +%FT%TZ), $(nproc) cores, proxy runtime: $RUNTIME ($THREADS-worker program runtime), upstream leg: $UPSTREAM"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${PROXY_BIN:-}" ]; then
    cargo build --release -q -p chaoslab-faultproxy --example proxy --example fault_effect
    PROXY_BIN=$TARGET/release/examples/proxy
fi
EFFECT_BIN=$TARGET/release/examples/fault_effect

. bench/lib.sh # free_port
REDIS_PORT=$(free_port)
PROXY_PORT=$(free_port)
API_PORT=$(free_port)
PIDS=()
TMP=$(mktemp -d /tmp/faultproxy-bench.XXXXXX)
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --protected-mode no --unixsocket "$TMP/redis.sock" --unixsocketperm 700 >/dev/null 2>&1 &
REDIS_PID=$!
PIDS+=($!)
if [ "$UPSTREAM" = unix ]; then
    for _ in $(seq 100); do [ -S "$TMP/redis.sock" ] && break; sleep 0.1; done
    PROXY_UPSTREAM="unix:$TMP/redis.sock"
else
    PROXY_UPSTREAM="127.0.0.1:$REDIS_PORT"
fi
"$PROXY_BIN" --listen "127.0.0.1:$PROXY_PORT" --upstream "$PROXY_UPSTREAM" \
    --api "127.0.0.1:$API_PORT" --threads "$THREADS" --runtime "$RUNTIME" >/dev/null &
PROXY_PID=$!
PIDS+=($!)

wait_ping() {
    for _ in $(seq 100); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = PONG ]; then return 0; fi
        sleep 0.1
    done
    echo "nothing answers PING on port $1" >&2
    exit 1
}
wait_ping "$REDIS_PORT"
wait_ping "$PROXY_PORT"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# One redis-benchmark run: port pipeline → "ops/s proxy-ticks redis-ticks bench-seconds"
# (ops/s of GET and INCR together; bench-seconds: its user+system CPU).
bench() {
    local p0 r0 p1 r1 out
    p0=$(ticks "$PROXY_PID"); r0=$(ticks "$REDIS_PID")
    /usr/bin/time -f '%U %S' -o "$TMP/time" \
        redis-benchmark -h 127.0.0.1 -p "$1" -t get,incr -c 50 -n "$REQUESTS" -P "$2" -q \
        >"$TMP/out" 2>/dev/null
    p1=$(ticks "$PROXY_PID"); r1=$(ticks "$REDIS_PID")
    # redis-benchmark -q prints e.g. "GET: 81234.56 requests per second, p50=…".
    out=$(tr '\r' '\n' <"$TMP/out" | awk -F'[: ]+' '/requests per second/ {n++; s += 1 / $2}
        END {if (n == 2) printf "%.0f", 2 / s; else print "nan"}')
    echo "$out $((p1 - p0)) $((r1 - r0)) $(awk '{print $1 + $2}' "$TMP/time")"
}

OPS=$((2 * REQUESTS))
declare -A RATIOS CPU_PROXY CPU_MODEL
printf '%-5s %-4s %12s %12s %7s %9s %9s %9s %9s %6s\n' round pipe "direct op/s" "proxy op/s" ratio \
    "proxy us" "redis us" "bench us" "direct us" load
for round in $(seq "$ROUNDS"); do
    for pipeline in 1 16; do
        # Alternate which goes first, so neither always meets the same moment.
        if [ $((round % 2)) = 1 ]; then
            read -r d_ops _ d_redis d_bench <<<"$(bench "$REDIS_PORT" "$pipeline")"
            read -r p_ops p_proxy p_redis p_bench <<<"$(bench "$PROXY_PORT" "$pipeline")"
        else
            read -r p_ops p_proxy p_redis p_bench <<<"$(bench "$PROXY_PORT" "$pipeline")"
            read -r d_ops _ d_redis d_bench <<<"$(bench "$REDIS_PORT" "$pipeline")"
        fi
        load=$(cut -d' ' -f1 /proc/loadavg)
        # CPU per operation (µs): the proxy's; Redis's and the benchmark
        # client's, each through the proxy; and direct (Redis + client).
        read -r ratio c_proxy c_redis c_bench c_direct model < <(awk -v dops="$d_ops" -v pops="$p_ops" \
            -v pp="$p_proxy" -v pr="$p_redis" -v pb="$p_bench" -v dr="$d_redis" -v db="$d_bench" \
            -v hz="$HZ" -v n="$OPS" 'BEGIN {
                cp = 1e6 * pp / hz / n; cr = 1e6 * pr / hz / n; cb = 1e6 * pb / n
                cd = 1e6 * dr / hz / n + 1e6 * db / n
                printf "%.3f %.2f %.2f %.2f %.2f %.3f\n", pops / dops, cp, cr, cb, cd, cd / (cp + cr + cb)
            }')
        printf '%-5s %-4s %12s %12s %7s %9s %9s %9s %9s %6s\n' "$round" "-P $pipeline" "$d_ops" "$p_ops" \
            "$ratio" "$c_proxy" "$c_redis" "$c_bench" "$c_direct" "$load"
        RATIOS[$pipeline]+="$ratio "
        CPU_PROXY[$pipeline]+="$c_proxy "
        CPU_MODEL[$pipeline]+="$model "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
echo
echo "== $ROUNDS rounds, 50 clients, $REQUESTS requests per test and command (GET+INCR ops/s)"
for pipeline in 1 16; do
    m=$(median <<<"${RATIOS[$pipeline]}")
    c=$(median <<<"${CPU_PROXY[$pipeline]}")
    model=$(median <<<"${CPU_MODEL[$pipeline]}")
    awk -v p="$pipeline" -v m="$m" -v r="${RATIOS[$pipeline]}" -v c="$c" -v model="$model" 'BEGIN {
        printf "-P %-2s ratio proxy/direct per round: %s median %.3f (target >= 0.80: %s); proxy CPU %.2f us/op (median); CPU-bound prediction %.2f\n",
            p, r, m, (m >= 0.80 ? "MET" : "MISSED"), c, model
    }'
done
echo "(CPU-bound prediction: direct CPU per op / CPU per op through the proxy, proxy + Redis + client —"
echo " the ratio when the cores are saturated, as on this 2-core machine.)"
echo "load during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== fault takes effect after its API call returns (target: within 100 ms)"
if [ -x "$EFFECT_BIN" ]; then
    "$EFFECT_BIN" --api "http://127.0.0.1:$API_PORT" --addr "127.0.0.1:$PROXY_PORT" \
        --proxy redis --trials "$TRIALS"
else
    echo "(skipped: $EFFECT_BIN not built)"
fi
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
