#!/usr/bin/env bash
# Starts chaoslab on this machine: builds the release binary, makes sure
# redis-server is installed (installs it with apt-get when run as root,
# otherwise says exactly how), then runs the lab in the foreground.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "lab.sh: installing redis-server"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
    else
        echo "lab.sh: redis-server is not installed; install it with: sudo apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS)" >&2
        exit 1
    fi
fi

command -v cargo >/dev/null 2>&1 || { echo "lab.sh: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/chaoslab
if "$BIN" up --help >/dev/null 2>&1; then
    exec "$BIN" up "$@"
fi

# Until the lab platform lands: a private Redis and one `chaoslab serve`.
STATE=.chaoslab/serve
mkdir -p "$STATE"
REDIS_PORT=${REDIS_PORT:-6390}
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE" --appendonly yes --save '' >"$STATE/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null' EXIT INT TERM
echo "lab.sh: redis-server on 127.0.0.1:$REDIS_PORT, service on http://127.0.0.1:${APP_PORT:-8000} (Ctrl-C stops both)"
APP_HOST=127.0.0.1 REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT LOG_FORMAT=${LOG_FORMAT:-text} "$BIN" serve "$@"
