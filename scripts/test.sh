#!/usr/bin/env bash
# The whole test suite: unit, lab and integration tests (pytest), then the molecule
# scenarios of the roles, all against the SIMULATED lab on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
python -m pytest "$@"
