#!/usr/bin/env bash
# What the lab's tests (tests/lab_*.rs, crates/lab) need beyond the Rust
# toolchain: a real redis-server for `chaoslab up`, and wrk for
# bench/ingress.sh (not run by CI, installed so the bench works on a CI-like
# box). Idempotent; run as root on a fresh Debian machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
    echo "lab: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The lab starts its own redis-server processes on free ports; a system one
# (if any) is left alone.
redis-server --version
