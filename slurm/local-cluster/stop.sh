#!/usr/bin/env bash
# Stop the local test cluster started by start.sh: cancel its jobs, delete the course reservation, end exactly
# the daemons whose pid files are in the state folder (slurmd of dc01 and dc02, slurmctld, slurmdbd, mariadbd,
# munged), and take back what start.sh put outside it (the /etc/slurm/slurm.conf link, the /etc/hosts block).
# The course user stays (it may own files elsewhere).
#
#   sudo bash slurm/local-cluster/stop.sh            # stop; keep logs, job state and accounting for a look
#   sudo bash slurm/local-cluster/stop.sh --purge    # stop and delete the whole state folder
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/profile.sh"  # $STATE, $COURSE_USER, what start.sh put outside the state folder; the reservation
RESERVATION=$(profile_value reservation)
# In stopping order, each group at once (each daemon takes about 2 s to end): the controller first (stopped after
# its nodes, it waits for messages it cannot send), then the nodes and slurmdbd (after the controller's last
# records), then the database and munged. "slurmd" alone: the one node of older versions of start.sh.
GROUPS_=("slurmctld" "slurmd.dc01 slurmd.dc02 slurmd slurmdbd" "mariadbd munged")
purge=0
case ${1:-} in
    "") ;;
    --purge) purge=1 ;;
    *) echo "stop.sh: error: unknown option '$1' (only --purge)" >&2; exit 2 ;;
esac

[[ $(id -u) -eq 0 ]] || { echo "stop.sh: error: needs root: run: sudo bash $0" >&2; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin

remove_hosts_block() {
    grep -qxF "$HOSTS_BEGIN" "$HOSTS" 2>/dev/null || return 0
    local rest
    rest=$(hosts_without_block)
    printf '%s\n' "$rest" >"$HOSTS"   # in place: in a container /etc/hosts is often a mounted file
    echo "stop.sh: removed the node names from $HOSTS"
}

if [[ ! -d $STATE ]]; then
    remove_hosts_block
    echo "stop.sh: nothing to stop (no state folder $STATE)"
    exit 0
fi
export SLURM_CONF=$STATE/etc/slurm.conf

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

stop_group() {  # stop_group NAME...: SIGTERM to all at once; SIGKILL to any still there after 20 s
    local name pid names=() pids=()
    for name; do
        alive "$name" || { rm -f "$STATE/run/$name.pid"; continue; }
        pid=$(pid_of "$name"); kill "$pid" 2>/dev/null || true
        names+=("$name"); pids+=("$pid")
    done
    for i in "${!pids[@]}"; do
        pid=${pids[i]}
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop.sh: ${names[i]} ($pid) ignored SIGTERM for 20 s: sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/run/${names[i]}.pid"
        echo "stop.sh: stopped ${names[i]} ($pid)"
    done
}
for group in "${GROUPS_[@]}"; do
    # shellcheck disable=SC2086
    stop_group $group
done

# --- the course user's home with the file quota (start.sh, "JSC's file systems") -------------------------------
# Its files go back onto the disk folder beneath, so the next start.sh finds them again. Only start.sh's own tmpfs
# (named course-home) is touched. $PROJECT and $SCRATCH stay in the state folder (--purge removes them).
unquota_home() {
    local home keep
    home=$(getent passwd "$COURSE_USER" | cut -d: -f6) || return 0
    [[ -n $home ]] && mountpoint -q "$home" || return 0
    [[ $(findmnt -n -r -o SOURCE,FSTYPE --mountpoint "$home") == "$HOME_SOURCE tmpfs" ]] || return 0
    keep=$(mktemp -d "${TMPDIR:-/tmp}/course-home-keep.XXXXXX")
    cp -a "$home/." "$keep/"
    if umount "$home" 2>/dev/null; then
        cp -a "$keep/." "$home/"
        echo "stop.sh: unmounted the course user's home $HOME_SOURCE from $home (its files kept on disk)"
    else
        echo "stop.sh: $home is busy (a process works in it): left mounted; stop that process, then run stop.sh again"
    fi
    rm -rf "$keep"
}
unquota_home
rm -f "$PROFILE_D"

rm -rf "$STATE/node-bin"   # the compute nodes' stand-in nvidia-smi (start.sh makes it again)
# The reservation must not come back with the next start's saved state.
rm -f "$STATE"/ctld/resv_state*
[[ $(readlink "$SYSTEM_CONF" 2>/dev/null) == "$SLURM_CONF" ]] && rm -f "$SYSTEM_CONF"
remove_hosts_block
if ((purge)); then
    rm -rf "$STATE"
    echo "stop.sh: removed $STATE"
fi
