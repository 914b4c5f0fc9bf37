#!/usr/bin/env bash
# Benchmark of the lab's ingress: builds release, runs `chaoslab up` with one
# replica in a temp dir, then wrk against that replica directly and through
# the ingress in the same run, for each path; prints req/s, p50 and p99 of
# both, the throughput ratio and the latency the ingress adds.
#
#   bench/ingress.sh          # DURATION=5s ROUNDS=3 CONNECTIONS=8 THREADS=2 PATHS="/livez /"
#
# Direct and ingress runs alternate ROUNDS times (the machine is shared and
# noisy); each figure printed is the median of its rounds.
#
# Target (2-core box): ingress >= 50 % of direct req/s, added p50 < 0.3 ms
# at 8 connections. Needs redis-server and wrk (apt-get install -y
# redis-server wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
PATHS=${PATHS:-"/livez /"}

for tool in redis-server wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing: apt-get install -y redis-server wrk curl" >&2; exit 1; }
done

cargo build --release --quiet
BIN=$PWD/target/release/chaoslab
TMP=$(mktemp -d)
cleanup() {
    if [ -n "${LAB_PID:-}" ]; then
        kill -TERM "$LAB_PID" 2>/dev/null || true
        wait "$LAB_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

cat >"$TMP/chaoslab.toml" <<'TOML'
[ingress]
port = 0
[control]
port = 0
[autoscaler]
enabled = false
[app.env]
LOG_LEVEL = "WARNING"
TOML
(cd "$TMP" && exec "$BIN" up >"$TMP/up.log" 2>&1) &
LAB_PID=$!

json() { python3 -c "import json,sys; d=json.load(open('$TMP/.chaoslab/lab.json')); print($1)"; }
for _ in $(seq 100); do [ -s "$TMP/.chaoslab/lab.json" ] && break; sleep 0.1; done
INGRESS=$(json "d['ingress_url']")
for _ in $(seq 100); do curl -fs "$INGRESS/" >/dev/null 2>&1 && break; sleep 0.1; done
READY=$(grep -o 'ready in [0-9.]*s' "$TMP/up.log" || echo "ready in ?")
TOKEN=$(json "d['token']")
CONTROL=$(json "d['control_url']")
REPLICA_PORT=$(curl -fs -H "Authorization: Bearer $TOKEN" "$CONTROL/api/replicas" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['target_port'])")
DIRECT="http://127.0.0.1:$REPLICA_PORT"

# wrk prints latencies as 850.00us / 1.20ms / 1.01s: normalise to ms.
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'; }
run_wrk() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" >"$TMP/wrk.txt"
    RPS=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.txt")
    P50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk.txt" | ms)
    P99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.txt" | ms)
    ERRS=$(awk '/Non-2xx|Socket errors/ {print}' "$TMP/wrk.txt" | tr '\n' ' ')
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "machine: $(nproc) CPUs, uptime: $(uptime)"
echo "lab: $READY (release build); wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, median of $ROUNDS alternating rounds, all on this machine"
printf '%-8s %-8s %12s %10s %10s  %s\n' path target req/s "p50 ms" "p99 ms" "errors"
for path in $PATHS; do
    : >"$TMP/direct"; : >"$TMP/ingress"
    for _ in $(seq "$ROUNDS"); do
        run_wrk "$DIRECT$path"; echo "$RPS $P50 $P99 $ERRS" >>"$TMP/direct"
        run_wrk "$INGRESS$path"; echo "$RPS $P50 $P99 $ERRS" >>"$TMP/ingress"
    done
    for target in direct ingress; do
        RPS=$(awk '{print $1}' "$TMP/$target" | median)
        P50=$(awk '{print $2}' "$TMP/$target" | median)
        P99=$(awk '{print $3}' "$TMP/$target" | median)
        ERRS=$(awk '{$1=$2=$3=""; print}' "$TMP/$target" | tr -s ' \n' ' ')
        printf '%-8s %-8s %12.0f %10.3f %10.3f  %s\n' "$path" "$target" "$RPS" "$P50" "$P99" "$ERRS"
        if [ "$target" = direct ]; then D_RPS=$RPS; D_P50=$P50; fi
    done
    awk -v d="$D_RPS" -v i="$RPS" -v dp="$D_P50" -v ip="$P50" -v p="$path" \
        'BEGIN {printf "%-8s ratio    ingress/direct throughput %.0f%%, added p50 %.3f ms\n", p, 100*i/d, ip-dp}'
done
