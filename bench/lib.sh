# Helpers the bench scripts (and link/serve-order.sh) share; sourced, not run.

# require "PACKAGES" TOOL...: exits 1 naming the first TOOL not on PATH and
# the apt-get line that installs PACKAGES.
require() {
    local packages=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$(basename "$0"): $tool missing: apt-get install -y $packages" >&2; exit 1; }
    done
}

# A free loopback TCP port (bound and released: another program could take
# it in between, which a bench run would then report as a start failure).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds; after SECONDS,
# says what it waited for and exits 1.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "$(basename "$0"): timed out waiting for: $*" >&2; exit 1; }
        sleep 0.05
    done
}

# start_redis DIR: a private redis-server on a free loopback port, no
# persistence, its log in DIR; sets REDIS_PORT and REDIS_PID (the caller
# kills it).
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$1" >"$1/redis.log" 2>&1 &
    REDIS_PID=$!
}
