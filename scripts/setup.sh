#!/usr/bin/env bash
# One-command setup: a virtualenv in .venv with rebuild, Ansible (with the Windows
# collections bundled by the `ansible` package, since Galaxy may be unreachable), the lab
# and the test tools; plus the system packages the tests use (qemu + iPXE, Chromium)
# when apt-get is available and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    [ -e /usr/lib/ipxe/qemu/pxe-e1000.rom ] || [ -e /usr/lib/ipxe/qemu/efi-e1000.rom ] || missing+=(ipxe-qemu)
    command -v chromium >/dev/null || missing+=(chromium)
    [ -x /usr/sbin/sshd ] || missing+=(openssh-server)  # the execution-node test's sshd (issue 17)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
else
    echo "setup: not root or no apt-get: install qemu-system-x86, ipxe-qemu, chromium and openssh-server yourself for the full test suite"
fi
echo "setup: done. Activate with: source .venv/bin/activate"
