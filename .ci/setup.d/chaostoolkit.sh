#!/usr/bin/env bash
# What the Chaos Toolkit test (tests/chaostoolkit_run.rs) needs beyond the
# Rust toolchain and redis-server: the `chaos` CLI (chaostoolkit) and its
# Toxiproxy driver (chaostoolkit-toxiproxy, Python module `chaostoxi`), from
# PyPI. They run docs/examples/chaostoolkit/redis-cut.json against a lab.
# Idempotent; run as root on a fresh Debian machine with python3 and pip.
set -euo pipefail

installed() {
    command -v chaos >/dev/null 2>&1 && python3 -c "import chaostoxi.proxy.actions" >/dev/null 2>&1
}

if ! installed; then
    echo "chaostoolkit: pip install chaostoolkit chaostoolkit-toxiproxy"
    python3 -m pip install --quiet --disable-pip-version-check chaostoolkit chaostoolkit-toxiproxy 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages chaostoolkit chaostoolkit-toxiproxy
fi
# pip may put the script where PATH does not look (e.g. ~/.local/bin, or a
# pyenv version's bin directory behind a shim).
if ! command -v chaos >/dev/null 2>&1; then
    bindir=$(python3 -c "import sysconfig; print(sysconfig.get_path('scripts'))" 2>/dev/null || true)
    for dir in "$bindir" /usr/local/bin "$HOME/.local/bin"; do
        if [ -n "$dir" ] && [ -x "$dir/chaos" ] && [ "$dir" != /usr/local/bin ]; then
            ln -sf "$dir/chaos" /usr/local/bin/chaos 2>/dev/null || true
            break
        fi
    done
fi
python3 -c "import chaostoxi.proxy.actions; print('chaostoolkit: chaostoolkit-toxiproxy ok')"
chaos --version
