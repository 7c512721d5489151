#!/usr/bin/env bash
# The whole test suite, all against the SIMULATED lab on loopback:
#   0. mypy --strict on the rebuild package (its core is typed: keep it so);
#   1. pytest: unit, lab and integration tests (incl. the README's rehearsal command);
#   2. the molecule scenario of every role that has one (converge, idempotence, testinfra verify).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$root/ansible.cfg"
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

mypy
python -m pytest "$@"

for scenario in roles/*/molecule/default; do
    role_dir=${scenario%/molecule/default}
    echo "molecule: ${role_dir#roles/} (default scenario)"
    (cd "$role_dir" && molecule test -s default)
done
echo "molecule: all scenarios passed"
