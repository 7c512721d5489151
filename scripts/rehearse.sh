#!/usr/bin/env bash
# One-command rehearsal: start the SIMULATED lab for a site (default arlon) from the bundled
# register, rebuild that site against it as against a real hospital, and write the report.
# Extra arguments go to `rebuild lab rehearse` (e.g. --register, --imaging-seconds,
# --bmc-power-seconds, --restart-seconds, --stop-lab). The simulated durations it ran with are printed at the start
# (docs/lab.md, "Simulated durations"): a measured rehearsal says which were shortened or 0.
set -euo pipefail
cd "$(dirname "$0")/.."
site=${1:-arlon}
shift || true
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
exec .venv/bin/rebuild lab rehearse "$site" "$@"
