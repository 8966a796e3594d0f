#!/usr/bin/env bash
# The test command: starts the local test cluster where it can (root, Slurm installed), then runs every test.
# Extra arguments go to pytest, e.g. `bash run-tests.sh -k matrix` or `bash run-tests.sh --target exercises`.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

if [[ $EUID -eq 0 ]] && command -v slurmctld >/dev/null; then
  bash slurm/local-cluster/start.sh
  echo "run-tests: the local Slurm cluster stays up; stop it with: bash slurm/local-cluster/stop.sh"
else
  echo "run-tests: not starting the local Slurm cluster (needs root and slurm-wlm); Slurm tests will skip" >&2
fi
exec .venv/bin/python -m pytest -n auto "$@"
