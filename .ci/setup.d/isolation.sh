#!/usr/bin/env bash
# What kernel isolation (SPEC §14, tests/isolation_*.rs) needs beyond the
# Rust toolchain: iproute2 (`ip`: network namespaces, veth pairs; `ss -K`:
# destroying flows for the reset fault), nftables (`nft`: the network
# faults' rules) and conntrack (flushing tracked flows). The tests also need
# root and cgroups (v1 or v2), which a CI machine has. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
if ((${#missing[@]})); then
    echo "isolation: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
nft --version
ip -V
