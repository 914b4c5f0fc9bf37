#!/usr/bin/env bash
# What the `chaoslab load` tests need beyond the Rust toolchain: headless
# Chromium (the HTML report screenshot test) and Locust from PyPI (the
# locustfile test). Idempotent; run as root on a fresh Debian machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
    echo "load: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v locust >/dev/null 2>&1; then
    echo "load: pip install locust"
    python3 -m pip install --quiet --disable-pip-version-check locust 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages locust
fi
# pip may put the script where PATH does not look (e.g. ~/.local/bin).
if ! command -v locust >/dev/null 2>&1; then
    for dir in /usr/local/bin "$HOME/.local/bin"; do
        if [ -x "$dir/locust" ]; then
            ln -sf "$dir/locust" /usr/local/bin/locust 2>/dev/null || true
        fi
    done
fi
locust --version
chromium --version
