#!/usr/bin/env bash
# Stop the local test cluster started by start.sh: cancel its jobs, delete the course reservation, and end
# exactly the daemons whose pid files are in the state folder (slurmd, slurmctld, munged).
#
#   sudo bash slurm/local-cluster/stop.sh            # stop; keep logs and job state for a look afterwards
#   sudo bash slurm/local-cluster/stop.sh --purge    # stop and delete the whole state folder
set -euo pipefail

STATE=${COURSE_SLURM_STATE:-/tmp/course-slurm}
RESERVATION=training2441
SYSTEM_CONF=/etc/slurm/slurm.conf
purge=0
case ${1:-} in
    "") ;;
    --purge) purge=1 ;;
    *) echo "stop.sh: error: unknown option '$1' (only --purge)" >&2; exit 2 ;;
esac

[[ $(id -u) -eq 0 ]] || { echo "stop.sh: error: needs root: run: sudo bash $0" >&2; exit 1; }
if [[ ! -d $STATE ]]; then
    echo "stop.sh: nothing to stop (no state folder $STATE)"
    exit 0
fi
export SLURM_CONF=$STATE/etc/slurm.conf

pid_of() { [[ -s $STATE/run/$1.pid ]] && cat "$STATE/run/$1.pid"; }
alive() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null; }

if alive slurmctld; then
    # Jobs first: slurmstepd processes outlive slurmd, so a running job would keep going after the stop.
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        echo "stop.sh: cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs || true
        for _ in $(seq 30); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
    fi
    scontrol delete reservation "$RESERVATION" 2>/dev/null || true
fi

for daemon in slurmd slurmctld munged; do
    alive "$daemon" || { rm -f "$STATE/run/$daemon.pid"; continue; }
    pid=$(pid_of "$daemon")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: $daemon ($pid) ignored SIGTERM for 10 s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/run/$daemon.pid"
    echo "stop.sh: stopped $daemon ($pid)"
done

# The reservation must not come back with the next start's saved state.
rm -f "$STATE"/ctld/resv_state*
[[ $(readlink "$SYSTEM_CONF" 2>/dev/null) == "$SLURM_CONF" ]] && rm -f "$SYSTEM_CONF"
if ((purge)); then
    rm -rf "$STATE"
    echo "stop.sh: removed $STATE"
fi
