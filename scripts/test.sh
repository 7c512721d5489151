#!/usr/bin/env bash
# The whole test suite, all against the SIMULATED lab on loopback:
#   1. mypy --strict on the rebuild package (its core is typed: keep it so);
#   2. the molecule scenario of every role that has one (converge, idempotence, testinfra verify);
#   3. pytest: unit, lab and integration tests (incl. the README's rehearsal command), last so
#      its summary line closes the output.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$root/ansible.cfg"
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

mypy

for scenario in roles/*/molecule/default; do
    role_dir=${scenario%/molecule/default}
    echo "molecule: ${role_dir#roles/} (default scenario)"
    (cd "$role_dir" && molecule test -s default)
done
echo "molecule: all scenarios passed"

python -m pytest "$@"
