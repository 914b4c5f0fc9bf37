#!/usr/bin/env bash
# What .ci/run's own checks need beyond the Rust toolchain: cargo-machete
# (no unused dependency, issue 12 item 4), from crates.io with its own
# lock file. Idempotent: skipped when it is already on PATH.
set -euo pipefail

if ! command -v cargo-machete >/dev/null 2>&1; then
    echo "ci-tools: cargo install cargo-machete --locked"
    cargo install --quiet cargo-machete --locked
fi
echo "ci-tools: $(command -v cargo-machete)"
