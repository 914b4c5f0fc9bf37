#!/usr/bin/env bash
# What the replicas' path to Redis costs in each isolation level (SPEC §14,
# issue 13 items 3 and 5), measured on real labs in one run:
#
#  kernel   `chaoslab up --isolation kernel`: Redis in the lab's network
#           namespace. The replicas' path — from the host through the veth
#           pair to Redis's `direct` address, as a replica connects — against
#           Redis on its own loopback inside the namespace (redis-benchmark
#           run there with `ip netns exec`, to the same address: a local
#           address, so through `lo`). Goal: >= 0.90.
#  process  `chaoslab up --isolation process`: the replicas' path through
#           the userspace fault proxy (no fault active) against
#           redis-server's own loopback port. Goal: >= 0.80.
#
# Each round runs redis-benchmark GET and INCR, 50 clients, unpipelined and
# at -P 16, on both paths back to back, alternating which goes first; the
# ratio of a round is path / loopback (GET + INCR ops/s), and the median of
# the rounds is the figure (the least skewed by other load on the machine;
# the load average is printed before and after). Also printed: the best
# round of each path against the best of the other (what each reaches when
# the machine lets it).
#
# Needs root for the kernel part (skipped, with the reason, otherwise),
# redis-benchmark, python3, and `ip`/`nft` (.ci/setup.d/isolation.sh).
# Everything runs in temp dirs on free ports; each lab is stopped with
# `chaoslab down` on every way out (trap), and if a lab does not stop,
# what it made in the kernel is removed by its name. Bounded: every command
# has a timeout and the whole run a deadline (DEADLINE seconds).
#
#   bench/isolation.sh                      # both modes, 7 rounds each
#   ROUNDS=5 REQUESTS=200000 bench/isolation.sh
#   MODES=kernel CHAOSLAB_BIN=target/debug/chaoslab bench/isolation.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
REQUESTS=${REQUESTS:-100000}
# Pipelined tests run this many times more requests (else they last a
# fraction of a second and the machine's noise is the figure).
PIPELINED_FACTOR=${PIPELINED_FACTOR:-8}
CLIENTS=${CLIENTS:-50}
MODES=${MODES:-kernel process}
DEADLINE=${DEADLINE:-900}
STARTED=$SECONDS

for tool in redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "isolation bench: $tool not found (apt-get install redis-tools python3)" >&2; exit 2; }
done

if [ -z "${CHAOSLAB_BIN:-}" ]; then
    # The lab's own process is on the process mode's data path: measure a
    # release build.
    echo "building chaoslab (release)…"
    timeout 3600 cargo build --release -q --bin chaoslab
    CHAOSLAB_BIN="${CARGO_TARGET_DIR:-target}/release/chaoslab"
fi
CHAOSLAB_BIN=$(realpath "$CHAOSLAB_BIN")

WORK=$(mktemp -d /tmp/chaoslab-bench-isolation-XXXXXX)
LAB_DIRS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for dir in "${LAB_DIRS[@]}"; do stop_lab "$dir"; done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

json() { # file python-expression-on-v
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

left() { echo $((DEADLINE - (SECONDS - STARTED))); }
check_deadline() {
    if [ "$(left)" -le 0 ]; then
        echo "isolation bench: over the ${DEADLINE}s deadline, stopping" >&2
        exit 1
    fi
}

# Stops the lab in `dir` (`chaoslab down`); if it is still there, kills it
# and removes what it made in the kernel by its name, as its next `up`
# would.
stop_lab() {
    local dir=$1 pid name id
    [ -d "$dir" ] || return 0
    (cd "$dir" && timeout 60 "$CHAOSLAB_BIN" down >/dev/null 2>&1) || true
    pid=$(cat "$dir/lab.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    name=$(cat "$dir/kernel.name" 2>/dev/null || true)
    if [ -n "$name" ] && [ "$(id -u)" = 0 ]; then
        id=${name#chaoslab-}
        if ip netns list 2>/dev/null | grep -q "^$name\b"; then
            for p in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
            timeout 10 ip netns del "$name" 2>/dev/null || true
        fi
        timeout 10 ip link del dev "clh$id" 2>/dev/null || true
        timeout 10 nft delete table ip "$name" 2>/dev/null || true
        for root in /sys/fs/cgroup/memory /sys/fs/cgroup/cpu /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup; do
            [ -d "$root/$name" ] || continue
            for group in "$root/$name"/*/ "$root/$name"; do
                [ -d "$group" ] || continue
                for p in $(cat "$group/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
                rmdir "$group" 2>/dev/null || true
            done
        done
    fi
    rm -rf "$dir"
}

# Starts `chaoslab up --isolation <mode>` in `dir` (free ports, one
# replica, no autoscaler) and waits until `status --json` shows a ready
# replica.
start_lab() {
    local mode=$1 dir=$2
    cat >"$dir/chaoslab.toml" <<'EOF'
[ingress]
port = 0

[control]
port = 0

[faults]
toxiproxy_port = 0

[app]
replicas = 1

[autoscaler]
enabled = false
EOF
    (cd "$dir" && exec "$CHAOSLAB_BIN" up --isolation "$mode" </dev/null >"$dir/up.out" 2>&1) &
    echo $! >"$dir/lab.pid"
    for _ in $(seq 1200); do
        if (cd "$dir" && timeout 10 "$CHAOSLAB_BIN" status --json >"$dir/status.json" 2>/dev/null) &&
            [ "$(json "$dir/status.json" 'any(r.get("ready") for r in v.get("replicas", []))')" = True ]; then
            json "$dir/status.json" 'v["isolation"]["name"]' >"$dir/kernel.name"
            return 0
        fi
        if ! kill -0 "$(cat "$dir/lab.pid")" 2>/dev/null; then
            echo "chaoslab up --isolation $mode exited:" >&2
            cat "$dir/up.out" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "chaoslab up --isolation $mode: no ready replica within 120 s" >&2
    tail -20 "$dir/up.out" >&2
    return 1
}

new_lab_dir() { # mode → sets DIR, registered for the cleanup
    DIR=$(mktemp -d "$WORK/lab-$1-XXXX")
    LAB_DIRS+=("$DIR")
}

# redis-benchmark GET and INCR → "get incr" ops/s. Arguments: pipeline,
# then the command prefix and connection options.
bench() {
    local pipeline=$1 requests=$REQUESTS
    shift
    [ "$pipeline" = 1 ] || requests=$((REQUESTS * PIPELINED_FACTOR))
    timeout 300 "$@" -t get,incr -c "$CLIENTS" -n "$requests" -P "$pipeline" -q 2>/dev/null |
        tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ {printf "%s ", $2}'
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

# Alternating rounds of `path` (label, command…) against `loopback`; prints
# per-round figures and the medians.
compare() { # mode goal path_label loopback_label
    local mode=$1 goal=$2 path_label=$3 loop_label=$4 round pipeline a b first
    local -a ratios1=() ratios16=()
    local -A BEST=()
    for round in $(seq "$ROUNDS"); do
        for pipeline in 1 16; do
            check_deadline
            if [ $((round % 2)) = 1 ]; then
                a=$(bench "$pipeline" "${PATH_CMD[@]}"); b=$(bench "$pipeline" "${LOOP_CMD[@]}"); first=$path_label
            else
                b=$(bench "$pipeline" "${LOOP_CMD[@]}"); a=$(bench "$pipeline" "${PATH_CMD[@]}"); first=$loop_label
            fi
            read -r ag ai <<<"$a"; read -r bg bi <<<"$b"
            if [ -z "${ai:-}" ] || [ -z "${bi:-}" ]; then
                echo "redis-benchmark gave no figures (path: '$a', loopback: '$b')" >&2
                exit 1
            fi
            ratio=$(awk -v ag="$ag" -v ai="$ai" -v bg="$bg" -v bi="$bi" 'BEGIN {printf "%.3f", (ag + ai) / (bg + bi)}')
            printf '%-7s round %d -P %-2s  %s: GET %9.0f INCR %9.0f | %s: GET %9.0f INCR %9.0f ops/s  ratio %s (%s first)\n' \
                "$mode" "$round" "$pipeline" "$path_label" "$ag" "$ai" "$loop_label" "$bg" "$bi" "$ratio" "$first"
            if [ "$pipeline" = 1 ]; then ratios1+=("$ratio"); else ratios16+=("$ratio"); fi
            BEST["path.$pipeline"]=$(awk -v a="${BEST["path.$pipeline"]:-0}" -v b="$ag" -v c="$ai" 'BEGIN {print (b + c > a) ? b + c : a}')
            BEST["loop.$pipeline"]=$(awk -v a="${BEST["loop.$pipeline"]:-0}" -v b="$bg" -v c="$bi" 'BEGIN {print (b + c > a) ? b + c : a}')
        done
    done
    local m1 m16 b1 b16
    m1=$(median "${ratios1[@]}")
    m16=$(median "${ratios16[@]}")
    b1=$(awk -v a="${BEST[path.1]}" -v b="${BEST[loop.1]}" 'BEGIN {printf "%.3f", a / b}')
    b16=$(awk -v a="${BEST[path.16]}" -v b="${BEST[loop.16]}" 'BEGIN {printf "%.3f", a / b}')
    RESULTS+=("$(awk -v mode="$mode" -v p="$path_label" -v l="$loop_label" -v m1="$m1" -v m16="$m16" -v g="$goal" \
        -v r1="${ratios1[*]}" -v r16="${ratios16[*]}" -v b1="$b1" -v b16="$b16" 'BEGIN {
        printf "%-7s %s / %s: unpipelined %.3f (rounds %s), -P 16 %.3f (rounds %s); goal >= %.2f: %s; best round of each: %.3f, %.3f",
            mode, p, l, m1, r1, m16, r16, g, (m1 >= g && m16 >= g) ? "MET" : "MISSED", b1, b16}')")
}

echo "== isolation bench: $(date -u +%FT%TZ), $(nproc) cores, $ROUNDS rounds, $CLIENTS clients, $REQUESTS requests per test (x$PIPELINED_FACTOR at -P 16)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS=()
for mode in $MODES; do
    case $mode in
    kernel)
        if [ "$(id -u)" != 0 ]; then
            RESULTS+=("kernel  skipped: not root (namespaces and cgroups need root)")
            continue
        fi
        new_lab_dir kernel
        dir=$DIR
        start_lab kernel "$dir"
        redis=$(json "$dir/status.json" 'v["lab"]["redis"]')
        addr=$(sed -E 's|^redis://[^@]*@([0-9.]+:[0-9]+).*|\1|' <<<"$redis")
        host=${addr%:*} port=${addr#*:}
        ns=$(cat "$dir/kernel.name")
        [ "$(json "$dir/status.json" 'v["isolation"]["network"]["mode"]')" = kernel ] || { echo "the lab is not in kernel network mode: $redis" >&2; exit 1; }
        pass=$(cat "$dir/.chaoslab/redis/admin.password")
        echo "kernel: Redis at $addr in namespace $ns"
        PATH_CMD=(redis-benchmark -h "$host" -p "$port" -a "$pass")
        LOOP_CMD=(timeout 300 ip netns exec "$ns" redis-benchmark -h "$host" -p "$port" -a "$pass")
        compare kernel 0.90 "veth" "ns loopback"
        ;;
    process)
        new_lab_dir process
        dir=$DIR
        start_lab process "$dir"
        redis=$(json "$dir/status.json" 'v["lab"]["redis"]')
        proxy=$(sed -E 's|^redis://[^@]*@([0-9.]+:[0-9]+).*|\1|' <<<"$redis")
        rport=$(sed -nE 's|.*redis-server on port ([0-9]+).*|\1|p' <<<"$redis")
        [ -n "$rport" ] || { echo "cannot read redis-server's port from: $redis" >&2; exit 1; }
        pass=$(cat "$dir/.chaoslab/redis/admin.password")
        echo "process: fault proxy at $proxy, redis-server on 127.0.0.1:$rport"
        PATH_CMD=(redis-benchmark -h "${proxy%:*}" -p "${proxy#*:}" -a "$pass")
        LOOP_CMD=(redis-benchmark -h 127.0.0.1 -p "$rport" -a "$pass")
        compare process 0.80 "fault proxy" "loopback"
        ;;
    *)
        echo "unknown mode $mode (kernel or process)" >&2
        exit 2
        ;;
    esac
    stop_lab "$dir"
done

echo
echo "== medians of the per-round ratios (path / Redis's own loopback, GET + INCR ops/s)"
printf '%s\n' "${RESULTS[@]}"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) ($(( SECONDS - STARTED )) s)"
