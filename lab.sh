#!/usr/bin/env bash
# Starts chaoslab on this machine: builds the release binary, makes sure
# redis-server is installed (installs it with apt-get when run as root,
# otherwise says exactly how), then runs `chaoslab up` in the foreground.
# Ctrl-C stops everything it started. Arguments go to `chaoslab up`.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "lab.sh: installing redis-server"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq redis-server >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
    else
        echo "lab.sh: redis-server is not installed; install it with: sudo apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS)" >&2
        exit 1
    fi
fi

command -v cargo >/dev/null 2>&1 || { echo "lab.sh: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
echo "lab.sh: building (cargo build --release)…"
cargo build --release --quiet
exec target/release/chaoslab up "$@"
