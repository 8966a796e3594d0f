#!/usr/bin/env bash
# The test command. Extra arguments go to pytest, e.g. `bash run-tests.sh -k matrix`.
#
# As root (CI, or `sudo bash run-tests.sh` on a workstation), in three passes:
#   1. start the local Slurm cluster (slurm/local-cluster/start.sh);
#   2. run the suite as the cluster's course user, in parallel: like JURECA-DC the cluster takes no jobs from root,
#      and students and instructors are normal users too;
#   3. run the few checks that need root (marker `root`: the real network namespace of `unshare -n`) as root;
#   then, in CI, the student's view: `pytest --target exercises` as the course user on a copy of the course,
#   untouched (every exercise "not done") and with the solutions copied in (every exercise "done", nothing skipped).
# As a normal user: the suite runs as you; tests that need root or the cluster skip with a reason (fail in CI).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
die() { echo "run-tests: error: $*" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then
  echo "run-tests: not root: the local Slurm cluster is not started here; its tests and the root-only ones skip" >&2
  exec .venv/bin/python -m pytest -n auto "$@"
fi

if command -v slurmctld >/dev/null; then
  bash slurm/local-cluster/start.sh
  echo "run-tests: the local Slurm cluster stays up; stop it with: bash slurm/local-cluster/stop.sh"
else
  echo "run-tests: slurm-wlm is not installed: the Slurm tests skip (run setup.sh as root first)" >&2
fi
user=$(head -n 1 "${COURSE_SLURM_STATE:-/tmp/course-slurm}/etc/users" 2>/dev/null || echo course)
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
runuser -u "$user" -- test -r "$ROOT/run-tests.sh" -a -x "$ROOT/.venv/bin/python" \
  || die "the course user '$user' cannot read $ROOT or run its .venv: put the course where every user can read it"
artifacts=${ARTIFACTS_DIR:-$ROOT/artifacts}
mkdir -p "$artifacts" && chown -R "$user" "$artifacts"
as_user() {
  runuser -u "$user" -- env CI="${CI:-}" ARTIFACTS_DIR="$artifacts" PYTHONDONTWRITEBYTECODE=1 "$@"
}

status=0
echo "run-tests: pass 1 of 2: the suite as the course user '$user' (pytest -n auto -m 'not root')"
as_user .venv/bin/python -m pytest -p no:cacheprovider -n auto -m "not root" "$@" || status=$?
echo "run-tests: pass 2 of 2: the checks that need root (pytest -m root)"
root_status=0
.venv/bin/python -m pytest -p no:cacheprovider -m root "$@" || root_status=$?
((root_status == 5)) && root_status=0   # the extra arguments left no root test: nothing to run is fine
((status)) || status=$root_status
if [[ ${CI:-} == true ]]; then
  echo "run-tests: the student's view (python -m tools.student_view as '$user')"
  as_user .venv/bin/python -m tools.student_view || status=$?
fi
exit "$status"
