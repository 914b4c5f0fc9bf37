#!/usr/bin/env bash
# Benchmark of the TCP fault proxy (crates/faultproxy), in one run:
#  1. redis-benchmark GET/INCR, 50 clients, unpipelined and -P 16, straight
#     to a private redis-server and through the fault proxy (no fault),
#     back to back, ROUNDS times; prints both, their ratio per round and the
#     median ratio (target: >= 60 % of direct ops/s unpipelined), and the
#     proxy's and Redis's CPU time per request (independent of other load);
#  2. how soon a fault takes effect after its API call returns (target:
#     within 100 ms), and how soon clearing restores flow.
# Needs redis-server, redis-cli, redis-benchmark. Loopback only; everything
# it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
REQUESTS=${REQUESTS:-200000}
TRIALS=${TRIALS:-20}
THREADS=${THREADS:-2}
# dedicated: connections on the fault proxy's own thread (FaultProxy::dedicated,
# what the lab should use); shared: on the program's THREADS-worker runtime.
RUNTIME=${RUNTIME:-dedicated}

echo "== faultproxy bench: $(date -u +%FT%TZ), $(nproc) cores, proxy runtime: $RUNTIME ($THREADS-worker program runtime)"
echo "load before: $(uptime)"
cargo build --release -q -p chaoslab-faultproxy --example proxy --example fault_effect
BIN=target/release/examples

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
REDIS_PORT=$(free_port)
PROXY_PORT=$(free_port)
API_PORT=$(free_port)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --protected-mode no >/dev/null 2>&1 &
REDIS_PID=$!
PIDS+=($!)
"$BIN/proxy" --listen "127.0.0.1:$PROXY_PORT" --upstream "127.0.0.1:$REDIS_PORT" \
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

# redis-benchmark -q prints e.g. "GET: 81234.56 requests per second, p50=…".
bench() { # port pipeline → "get incr" ops/s
    redis-benchmark -h 127.0.0.1 -p "$1" -t get,incr -c 50 -n "$REQUESTS" -P "$2" -q 2>/dev/null \
        | tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ {printf "%s ", $2}'
}

declare -A SUM
for pipeline in 1 16; do
    for target in direct proxy; do SUM[$target.$pipeline]="0 0"; done
done
add() { # key "get incr"
    read -r g0 i0 <<<"${SUM[$1]}"
    read -r g1 i1 <<<"$2"
    SUM[$1]="$(awk -v a="$g0" -v b="$g1" 'BEGIN{print a+b}') $(awk -v a="$i0" -v b="$i1" 'BEGIN{print a+b}')"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
RATIOS=()
PROXY_TICKS=0
REDIS_TICKS=0
for round in $(seq "$ROUNDS"); do
    for pipeline in 1 16; do
        direct=$(bench "$REDIS_PORT" "$pipeline")
        p0=$(ticks "$PROXY_PID"); r0=$(ticks "$REDIS_PID")
        proxied=$(bench "$PROXY_PORT" "$pipeline")
        p1=$(ticks "$PROXY_PID"); r1=$(ticks "$REDIS_PID")
        printf 'round %d  -P %-2s  direct: GET %10s INCR %10s | proxy: GET %10s INCR %10s ops/s\n' \
            "$round" "$pipeline" $direct $proxied
        add "direct.$pipeline" "$direct"
        add "proxy.$pipeline" "$proxied"
        if [ "$pipeline" = 1 ]; then
            RATIOS+=("$(echo "$direct $proxied" | awk '{printf "%.1f", 100 * ($3 + $4) / ($1 + $2)}')")
            PROXY_TICKS=$((PROXY_TICKS + p1 - p0))
            REDIS_TICKS=$((REDIS_TICKS + r1 - r0))
        fi
    done
done

echo
echo "== mean of $ROUNDS rounds, 50 clients, $REQUESTS requests per test"
for pipeline in 1 16; do
    read -r dg di <<<"${SUM[direct.$pipeline]}"
    read -r pg pi <<<"${SUM[proxy.$pipeline]}"
    awk -v p="$pipeline" -v r="$ROUNDS" -v dg="$dg" -v di="$di" -v pg="$pg" -v pi="$pi" 'BEGIN {
        printf "-P %-2s GET : direct %10.0f  proxy %10.0f ops/s  ratio %5.1f %%\n", p, dg/r, pg/r, 100*pg/dg
        printf "-P %-2s INCR: direct %10.0f  proxy %10.0f ops/s  ratio %5.1f %%\n", p, di/r, pi/r, 100*pi/di
    }'
done
# Each round measures direct and proxied back to back, so the median of the
# per-round ratios is the figure least skewed by other load on the machine.
median=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}')
echo "unpipelined GET+INCR through the proxy, per round: ${RATIOS[*]} % of direct"
awk -v m="$median" 'BEGIN {printf "median: %.1f %% of direct (target >= 60 %%): %s\n", m, (m >= 60 ? "MET" : "MISSED")}'
HZ=$(getconf CLK_TCK)
awk -v p="$PROXY_TICKS" -v r="$REDIS_TICKS" -v hz="$HZ" -v n="$((ROUNDS * 2 * REQUESTS))" 'BEGIN {
    printf "CPU per unpipelined request through the proxy: proxy %.1f us, redis-server %.1f us\n", 1e6*p/hz/n, 1e6*r/hz/n
}'
echo
echo "== fault takes effect after its API call returns (target: within 100 ms)"
"$BIN/fault_effect" --api "http://127.0.0.1:$API_PORT" --addr "127.0.0.1:$PROXY_PORT" \
    --proxy redis --trials "$TRIALS"
echo
echo "load after: $(uptime)"
