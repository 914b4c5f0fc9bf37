#!/usr/bin/env bash
# What the fault proxy's tests need beyond the Rust toolchain and the
# redis-server/redis-tools that .ci/run installs: the Toxiproxy client from
# PyPI (toxiproxy-python; it pulls in requests and future), used by
# crates/faultproxy/tests/toxiproxy_python.rs. Idempotent; run as root on a
# fresh Debian machine with python3 and pip.
set -euo pipefail

if ! python3 -c "import toxiproxy" >/dev/null 2>&1; then
    echo "faultproxy: pip install toxiproxy-python"
    python3 -m pip install --quiet --disable-pip-version-check toxiproxy-python 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages toxiproxy-python
fi
python3 -c "import toxiproxy, future, requests; print('faultproxy: toxiproxy-python ok')"
