#!/usr/bin/env bash
# What tests/targets_fault.rs needs beyond the Rust toolchain: from PyPI,
# kubernetes-validate (the NetworkPolicy a k8s network fault applies is
# checked with --strict) and jsonschema + PyYAML (the Chaos Mesh NetworkChaos
# is checked against the CRD schema vendored in tests/fixtures/chaos-mesh/).
# bash runs the dry runs through `bash -n`. No cluster, no Azure: kubectl,
# az and curl are recording stand-ins the test writes itself.
# Idempotent; run as root on a fresh Debian machine with python3 and pip.
set -euo pipefail

pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

if ! python3 -c "import jsonschema, yaml" >/dev/null 2>&1; then
    echo "targets-fault: pip install jsonschema PyYAML"
    pip_install jsonschema PyYAML
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "targets-fault: pip install kubernetes-validate"
    pip_install kubernetes-validate
fi
# pip may put the script where PATH does not look.
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
        "$(python3 -m site --user-base 2>/dev/null)/bin"; do
        if [ -x "$dir/kubernetes-validate" ]; then
            ln -sf "$dir/kubernetes-validate" /usr/local/bin/kubernetes-validate 2>/dev/null || true
            break
        fi
    done
fi
kubernetes-validate --version
python3 -c "import jsonschema, yaml; print('targets-fault: jsonschema and PyYAML ok')"
