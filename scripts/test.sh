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

# Wall time per group, so CI's output shows where the suite's time goes (pytest prints its own
# groups - unit, lab, integration - before its summary line).
started=$SECONDS
mypy
echo "timing: mypy $((SECONDS - started)) s"

started=$SECONDS
for scenario in roles/*/molecule/default; do
    role_dir=${scenario%/molecule/default}
    echo "molecule: ${role_dir#roles/} (default scenario)"
    role_started=$SECONDS
    (cd "$role_dir" && molecule test -s default)
    echo "timing: molecule ${role_dir#roles/} $((SECONDS - role_started)) s"
done
echo "molecule: all scenarios passed"
echo "timing: molecule (all scenarios) $((SECONDS - started)) s"

python -m pytest --durations=10 "$@"
