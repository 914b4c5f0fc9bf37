#!/usr/bin/env bash
# What tests/targets_aca.rs needs beyond the Rust toolchain: two PyPI
# packages, used offline to validate `chaoslab export aca`.
# - pycep-parser: a Bicep parser in Python; every exported .bicep must parse.
# - azure-mgmt-appcontainers: the Container Apps API model; every key of the
#   exported Container App YAML must map onto its models' attribute maps
#   (tests/targets_support/aca_yaml_keys.py). PyYAML reads the YAML.
# Idempotent; run as root on a fresh Debian machine with python3 and pip.
set -euo pipefail

pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

if ! python3 -c "import pycep, azure.mgmt.appcontainers, yaml" >/dev/null 2>&1; then
    echo "targets-aca: pip install pycep-parser azure-mgmt-appcontainers pyyaml"
    pip_install pycep-parser azure-mgmt-appcontainers pyyaml
fi
python3 -c "import pycep, azure.mgmt.appcontainers, yaml; print('targets-aca: pycep-parser, azure-mgmt-appcontainers and PyYAML importable')"
