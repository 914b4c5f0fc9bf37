#!/usr/bin/env bash
# What the service's API fuzz test needs beyond the Rust toolchain and the
# redis-server that .ci/run installs: schemathesis from PyPI (its `st`
# command), used by tests/serve/schemathesis.rs to run generated requests
# from `chaoslab serve`'s /openapi.json against the real binary.
# Idempotent; run as root on a fresh Debian machine with python3 and pip.
set -euo pipefail

if ! command -v st >/dev/null 2>&1 && ! python3 -c "import schemathesis" >/dev/null 2>&1; then
    echo "schemathesis: pip install schemathesis"
    python3 -m pip install --quiet --disable-pip-version-check schemathesis 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages schemathesis
fi
# pip may put the script where PATH does not look (a user or venv scripts
# directory): link it into /usr/local/bin.
if ! command -v st >/dev/null 2>&1; then
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
        "$(python3 -m site --user-base 2>/dev/null)/bin" /usr/local/bin; do
        if [ -x "$dir/st" ]; then
            ln -sf "$dir/st" /usr/local/bin/st 2>/dev/null || true
            break
        fi
    done
fi
st --version
