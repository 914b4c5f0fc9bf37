#!/usr/bin/env bash
# Benchmark of the lab's ingress: builds release, runs `chaoslab up` with one
# replica in a temp dir, starts nginx (a temp config: reverse proxy to the
# same replica, keepalive upstream, access log off, on a free loopback
# port) and the proxy ceiling (crates/ingress/examples/proxy_ceiling.rs:
# the least a Rust proxy on tokio does to carry these requests), then wrk
# against that replica directly, through the ingress, through nginx and
# through the ceiling in the same run, for each path; prints req/s, p50
# and p99 of each, CPU per request of each proxy (utime+stime from /proc
# over its rounds), throughput against direct and the latency each proxy
# adds, whether the ingress keeps up with nginx, and how far it is from
# the ceiling.
#
#   bench/ingress.sh          # DURATION=5s ROUNDS=5 CONNECTIONS=8 THREADS=2 WORKERS=$(nproc) PATHS="/livez /"
#
# The targets' runs alternate ROUNDS times, in rotating order (the machine
# is shared and noisy); each figure printed is the median of its rounds.
# CARGO_TARGET_DIR is honoured (default target/); CHAOSLAB_BIN=path runs
# that binary instead of building one (to compare two builds).
#
# Goals (issue 12 item 5): the ingress's throughput >= nginx's and its
# added p50 <= nginx's, at 8 connections, each proxy with WORKERS event
# loops (one per CPU by default, as nginx's `worker_processes auto`; the
# lab's own default is one ingress thread: WORKERS=1 compares that). The
# ceiling is no goal: it shows what a proxy doing nothing else costs here.
# Needs redis-server, wrk and nginx (apt-get install -y redis-server wrk
# nginx).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
# Event loops of each proxy: the ingress's `[ingress] threads` and nginx's
# `worker_processes`, the same for both (nginx's `auto` is one per CPU).
WORKERS=${WORKERS:-$(nproc)}
PATHS=${PATHS:-"/livez /"}

PATH=$PATH:/usr/sbin
. bench/lib.sh # require, free_port, wait_for
require "redis-server wrk curl nginx" redis-server wrk curl python3 nginx

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${CHAOSLAB_BIN:-}" ]; then
    BIN=$CHAOSLAB_BIN
else
    cargo build --release --quiet -j 2 --bin chaoslab
    BIN=$TARGET/release/chaoslab
fi
cargo build --release --quiet -j 2 -p chaoslab-ingress --example proxy_ceiling
CEILING_BIN=$TARGET/release/examples/proxy_ceiling
TMP=$(mktemp -d /tmp/chaoslab-ingress-bench.XXXXXX)
cleanup() {
    if [ -n "${CEILING_PID:-}" ]; then
        kill -TERM "$CEILING_PID" 2>/dev/null || true
        wait "$CEILING_PID" 2>/dev/null || true
    fi
    if [ -n "${NGINX_PID:-}" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [ -n "${LAB_PID:-}" ]; then
        kill -TERM "$LAB_PID" 2>/dev/null || true
        wait "$LAB_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

cat >"$TMP/chaoslab.toml" <<TOML
[ingress]
port = 0
threads = $WORKERS
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
wait_for 30 test -s "$TMP/.chaoslab/lab.json"
INGRESS=$(json "d['ingress_url']")
wait_for 30 curl -fs "$INGRESS/"
READY=$(grep -o 'ready in [0-9.]*s' "$TMP/up.log" || echo "ready in ?")
TOKEN=$(json "d['token']")
CONTROL=$(json "d['control_url']")
REPLICA_PORT=$(curl -fs -H "Authorization: Bearer $TOKEN" "$CONTROL/api/replicas" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['target_port'])")
DIRECT="http://127.0.0.1:$REPLICA_PORT"

# nginx as the reference reverse proxy, in front of the same replica: as
# the ingress does, it keeps upstream connections alive and adds
# X-Forwarded-For/-Proto; no access log.
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream replica {
        server 127.0.0.1:$REPLICA_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://replica;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto http;
        }
    }
}
NGINX
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/stderr" &
NGINX_PID=$!
NGINX="http://127.0.0.1:$NGINX_PORT"
for _ in $(seq 100); do curl -fs "$NGINX/livez" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$NGINX/livez" >/dev/null || { echo "bench: nginx did not come up: $(cat "$TMP/nginx/stderr" "$TMP/nginx/error.log" 2>/dev/null)" >&2; exit 1; }

# The ceiling, with as many event loops, in front of the same replica.
CEILING_PORT=$(free_port)
"$CEILING_BIN" "127.0.0.1:$CEILING_PORT" "127.0.0.1:$REPLICA_PORT" "$WORKERS" >"$TMP/ceiling.log" 2>&1 &
CEILING_PID=$!
CEILING="http://127.0.0.1:$CEILING_PORT"
wait_for 10 curl -fs "$CEILING/livez"

# CPU (utime+stime, clock ticks) of the processes whose CPU a proxy costs:
# the lab process (the ingress runs inside it; its replicas and Redis are
# children of their own, not counted), nginx's master and its workers. The
# lab works for every request even when it does not pass the ingress (the
# fault proxy carries the replica's Redis traffic): its CPU per request in
# the direct rounds, shown in brackets on the direct line, is subtracted
# from the ingress's to give what the ingress itself costs. The ceiling is
# one process.
HZ=$(getconf CLK_TCK)
tree_ticks() {
    local total=0 pid pids=$1
    [ "$1" = "${NGINX_PID:-}" ] && pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
    for pid in $pids; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# wrk prints latencies as 850.00us / 1.20ms / 1.01s: normalise to ms.
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'; }
# One wrk run against URL $1; CPU per request of process tree $2 if given.
run_wrk() {
    local before=0 after=0
    [ -n "${2:-}" ] && before=$(tree_ticks "$2")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" >"$TMP/wrk.txt"
    [ -n "${2:-}" ] && after=$(tree_ticks "$2")
    CPU=$(awk -v t=$((after - before)) -v hz="$HZ" '/requests in/ {printf "%.2f", ($1 > 0 ? t * 1e6 / hz / $1 : 0)}' "$TMP/wrk.txt")
    RPS=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.txt")
    P50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk.txt" | ms)
    P99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.txt" | ms)
    ERRS=$(awk '/Non-2xx|Socket errors/ {print}' "$TMP/wrk.txt" | tr '\n' ' ')
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "machine: $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "lab: $READY (release build), $(nginx -v 2>&1); $WORKERS event loop(s) each (ingress threads, nginx workers); wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, median of $ROUNDS alternating rounds, all on this machine"
printf '%-8s %-8s %12s %10s %10s %12s  %s\n' path target req/s "p50 ms" "p99 ms" "CPU µs/req" "errors"
LOADS=()
for path in $PATHS; do
    for target in direct ingress nginx ceiling; do : >"$TMP/r.$target"; done
    for round in $(seq "$ROUNDS"); do
        # Rotate the order so that no target always runs first.
        case $((round % 4)) in
            1) order="direct ingress nginx ceiling" ;;
            2) order="ingress nginx ceiling direct" ;;
            3) order="nginx ceiling direct ingress" ;;
            0) order="ceiling direct ingress nginx" ;;
        esac
        for target in $order; do
            case $target in
                direct) run_wrk "$DIRECT$path" "$LAB_PID" ;;
                ingress) run_wrk "$INGRESS$path" "$LAB_PID" ;;
                nginx) run_wrk "$NGINX$path" "$NGINX_PID" ;;
                ceiling) run_wrk "$CEILING$path" "$CEILING_PID" ;;
            esac
            echo "$RPS $P50 $P99 $CPU $ERRS" >>"$TMP/r.$target"
        done
        LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
    done
    for target in direct ingress nginx ceiling; do
        RPS=$(awk '{print $1}' "$TMP/r.$target" | median)
        P50=$(awk '{print $2}' "$TMP/r.$target" | median)
        P99=$(awk '{print $3}' "$TMP/r.$target" | median)
        CPU=$(awk '{print $4}' "$TMP/r.$target" | median)
        ERRS=$(awk '{$1=$2=$3=$4=""; print}' "$TMP/r.$target" | tr -s ' \n' ' ')
        [ "$target" = direct ] && CPU_SHOWN="($CPU)" || CPU_SHOWN=$CPU
        printf '%-8s %-8s %12.0f %10.3f %10.3f %12s  %s\n' "$path" "$target" "$RPS" "$P50" "$P99" "$CPU_SHOWN" "$ERRS"
        eval "${target}_RPS=$RPS ${target}_P50=$P50 ${target}_CPU=$CPU"
    done
    awk -v d="$direct_RPS" -v i="$ingress_RPS" -v n="$nginx_RPS" -v c="$ceiling_RPS" \
        -v dp="$direct_P50" -v ip="$ingress_P50" -v np="$nginx_P50" -v cp="$ceiling_P50" \
        -v dc="$direct_CPU" -v ic="$ingress_CPU" -v nc="$nginx_CPU" -v cc="$ceiling_CPU" -v p="$path" 'BEGIN {
        printf "%-8s ingress  %.0f%% of direct, added p50 %.3f ms, CPU %.2f µs/req net of the lab'"'"'s own (%.2f)\n", p, 100*i/d, ip-dp, ic-dc, dc
        printf "%-8s nginx    %.0f%% of direct, added p50 %.3f ms, CPU %.2f µs/req\n", p, 100*n/d, np-dp, nc
        printf "%-8s ceiling  %.0f%% of direct, added p50 %.3f ms, CPU %.2f µs/req\n", p, 100*c/d, cp-dp, cc
        printf "%-8s goals    ingress/nginx throughput %.2f (>= 1.00): %s; added p50 %.3f vs %.3f ms: %s; CPU/req ingress/nginx %.2f\n", p, i/n, (i >= n ? "met" : "NOT MET"), ip-dp, np-dp, (ip-dp <= np-dp ? "met" : "NOT MET"), (nc > 0 ? (ic-dc)/nc : 0)
        printf "%-8s ceiling  ingress/ceiling throughput %.2f, CPU/req %.2f; nginx/ceiling throughput %.2f, CPU/req %.2f\n", p, i/c, (cc > 0 ? (ic-dc)/cc : 0), n/c, (cc > 0 ? nc/cc : 0)
    }'
    # The same ratio round by round (the ingress and nginx ran minutes
    # apart at most): how far the machine's noise moves it.
    paste -d' ' <(awk '{print $1}' "$TMP/r.ingress") <(awk '{print $1}' "$TMP/r.nginx") | awk -v p="$path" '
        $2 > 0 { r = $1 / $2; ratios = ratios sprintf(" %.2f", r); if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r }
        END { printf "%-8s spread   ingress/nginx throughput round by round:%s (%.2f-%.2f)\n", p, ratios, lo, hi }'
done
echo "load average (1 min) after each round: ${LOADS[*]}; after: $(cut -d' ' -f1-3 /proc/loadavg)"
