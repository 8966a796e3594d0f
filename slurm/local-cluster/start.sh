#!/usr/bin/env bash
# Start a one-machine Slurm cluster shaped like JURECA-DC, so the course's batch scripts run here unchanged.
#
#   sudo bash slurm/local-cluster/start.sh      # start (or check) the cluster; safe to run again
#   sudo bash slurm/local-cluster/stop.sh       # stop exactly the daemons started here
#
# What it sets up, all of it under one state folder ($COURSE_SLURM_STATE, default /tmp/course-slurm):
#   munged (own key and socket), slurmctld and slurmd for this machine; partition dc-gpu (the default);
#   GRES gpu:4 backed by character-device stand-ins; reservation training2441 for root (and $SUDO_USER);
#   Lmod module files named like JSC's (Stages/2024, GCC, OpenMPI, Python, PyTorch) that expose the
#   project's Python environment (.venv) on the compute node, and a task prolog that makes `module`
#   work inside batch scripts.
# Outside the state folder it only installs missing apt packages and links /etc/slurm/slurm.conf to the
# state folder's slurm.conf, because every Slurm command (sbatch, squeue, scontrol) reads that path.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=${COURSE_SLURM_STATE:-/tmp/course-slurm}
RESERVATION=training2441
PARTITION=dc-gpu
WAIT_S=${COURSE_SLURM_WAIT_S:-90}
SYSTEM_CONF=/etc/slurm/slurm.conf
LMOD_INIT=/usr/share/lmod/lmod/init/bash
GCC_VERSION=12.3.0   # the versions JSC's Stages/2024 carries
MPI_VERSION=4.1.5

die() { echo "start.sh: error: $*" >&2; exit 1; }
say() { echo "start.sh: $*"; }

[[ $(id -u) -eq 0 ]] || die "needs root (daemons, mknod, /etc/slurm): run: sudo bash $0"
[[ $STATE == /* ]] || die "COURSE_SLURM_STATE must be an absolute path, not '$STATE'"

# --- packages -------------------------------------------------------------------------------------------
missing=()
command -v slurmctld >/dev/null || missing+=(slurmctld)
command -v slurmd >/dev/null || missing+=(slurmd)
command -v sbatch >/dev/null || missing+=(slurm-client)
command -v munged >/dev/null || missing+=(munge)
[[ -f $LMOD_INIT ]] || missing+=(lmod)
if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge lmod >/dev/null \
        || die "apt-get install slurm-wlm munge lmod failed (network or apt sources?)"
fi

# --- the project's Python environment, which the PyTorch module exposes -------------------------------
VENV_PY=$ROOT/.venv/bin/python
[[ -x $VENV_PY ]] || die "no project environment at $ROOT/.venv: run ./setup.sh first"
PYTHON_REAL=$(readlink -f "$VENV_PY")
PYTHON_BIN=$(dirname "$PYTHON_REAL")
VENV_SITE=$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
PY_VERSION=$("$PYTHON_REAL" -c 'import platform; print(platform.python_version())')
TORCH_VERSION=$("$VENV_PY" -c 'from importlib.metadata import version; print(version("torch").split("+")[0])' \
    2>/dev/null) || die "torch is not installed in $ROOT/.venv: run ./setup.sh first"

# --- the state folder ---------------------------------------------------------------------------------
mkdir -p "$STATE"/{etc,log,run,ctld,slurmd,munge,dev,python-bin}
chmod 755 "$STATE"
chmod 755 "$STATE/munge"  # users reach munged through its socket; the key inside stays 0600
export SLURM_CONF=$STATE/etc/slurm.conf

HOST=$(hostname -s)
# `slurmd -C` prints this machine's real layout (CPUs, sockets, cores, threads, memory); the node is
# declared with it so a job asking for more than the machine has (JURECA's 128 cores) is rejected.
NODE_LINE=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=//' -e 's/ *$//')
[[ $NODE_LINE == "$HOST "* ]] || die "slurmd -C names the node '${NODE_LINE%% *}', hostname -s says '$HOST'"
# Declare 90 % of the memory: slurmd marks a node invalid if it reports less than configured.
if [[ $NODE_LINE =~ RealMemory=([0-9]+) ]]; then
    NODE_LINE=${NODE_LINE/RealMemory=${BASH_REMATCH[1]}/RealMemory=$((BASH_REMATCH[1] * 9 / 10))}
fi

render() {  # render TEMPLATE DEST: fill in the @NAME@ placeholders
    sed -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$HOST|g" -e "s|@NODE_LINE@|$NODE_LINE|g" \
        -e "s|@CTLD_PORT@|${COURSE_SLURM_CTLD_PORT:-6817}|g" -e "s|@SLURMD_PORT@|${COURSE_SLURM_SLURMD_PORT:-6818}|g" \
        -e "s|@LMOD_INIT@|$LMOD_INIT|g" -e "s|@MODULEROOT@|$STATE/modulefiles|g" \
        -e "s|@GCC_VERSION@|$GCC_VERSION|g" -e "s|@MPI_VERSION@|$MPI_VERSION|g" \
        -e "s|@PY_VERSION@|$PY_VERSION|g" -e "s|@TORCH_VERSION@|$TORCH_VERSION|g" \
        -e "s|@PYTHON_BIN@|$PYTHON_BIN|g" -e "s|@VENV_SITE@|$VENV_SITE|g" "$1" >"$2.new"
    if [[ -f $2 ]] && cmp -s "$2.new" "$2"; then rm -f "$2.new"; return 1; fi
    mv "$2.new" "$2"
}

changed=0
render "$HERE/slurm.conf.in" "$STATE/etc/slurm.conf" && changed=1
render "$HERE/gres.conf.in" "$STATE/etc/gres.conf" && changed=1
render "$HERE/task-prolog.sh.in" "$STATE/etc/task-prolog.sh" || true
chmod 755 "$STATE/etc/task-prolog.sh"
# An empty plugstack.conf beside slurm.conf keeps the daemons from reading one meant for another cluster.
: >"$STATE/etc/plugstack.conf"

# The "GPUs": character devices with the numbers of /dev/null.
for i in 0 1 2 3; do
    [[ -c $STATE/dev/nvidia$i ]] || mknod "$STATE/dev/nvidia$i" c 1 3 || die "mknod $STATE/dev/nvidia$i failed"
done

# Module tree, JSC layout: Core -> Stages/2024/Core -> Compiler/GCC/<v> -> MPI/GCC/<v>/OpenMPI/<v>.
MODS=$STATE/modulefiles
place() {  # place TEMPLATE RELATIVE-DEST
    mkdir -p "$(dirname "$MODS/$2")"
    render "$HERE/modulefiles/$1.lua.in" "$MODS/$2" || true
}
place Stages "Core/Stages/2024.lua"
place GCC "Stages/2024/Core/GCC/$GCC_VERSION.lua"
place Python "Stages/2024/Core/Python/$PY_VERSION.lua"
place OpenMPI "Stages/2024/Compiler/GCC/$GCC_VERSION/OpenMPI/$MPI_VERSION.lua"
place PyTorch "Stages/2024/MPI/GCC/$GCC_VERSION/OpenMPI/$MPI_VERSION/PyTorch/$TORCH_VERSION.lua"
# The course scripts call `python`; a base bin dir without one (Debian's /usr/bin) gets it from here.
if [[ ! -x $PYTHON_BIN/python ]]; then
    ln -sfn "$PYTHON_REAL" "$STATE/python-bin/python"
    sed -i "s|^prepend_path(\"PATH\", \"$PYTHON_BIN\")|&\nprepend_path(\"PATH\", \"$STATE/python-bin\")|" \
        "$MODS/Stages/2024/Core/Python/$PY_VERSION.lua"
fi

# --- /etc/slurm/slurm.conf -> the state folder ----------------------------------------------------------
mkdir -p "$(dirname "$SYSTEM_CONF")"
if [[ -e $SYSTEM_CONF && ! -L $SYSTEM_CONF ]]; then
    die "$SYSTEM_CONF is a real file, not this cluster's link: move it away, then run again"
fi
[[ $(readlink "$SYSTEM_CONF" 2>/dev/null) == "$SLURM_CONF" ]] || ln -sfn "$SLURM_CONF" "$SYSTEM_CONF"

# --- daemons --------------------------------------------------------------------------------------------
alive() { [[ -s $STATE/run/$1.pid ]] && kill -0 "$(cat "$STATE/run/$1.pid")" 2>/dev/null; }
log_tail() { echo "--- last lines of $STATE/log/$1.log ---" >&2; tail -n 20 "$STATE/log/$1.log" >&2 2>/dev/null || true; }

if ((changed)) && { alive slurmctld || alive slurmd; }; then
    say "configuration changed: restarting slurmctld and slurmd"
    for d in slurmd slurmctld; do alive "$d" && kill "$(cat "$STATE/run/$d.pid")"; done
    for _ in $(seq 50); do alive slurmd || alive slurmctld || break; sleep 0.2; done
fi

if ! alive munged; then
    [[ -s $STATE/munge/munge.key ]] || { mungekey --create --keyfile="$STATE/munge/munge.key" --bits=1024 \
        || die "mungekey failed"; }
    chmod 600 "$STATE/munge/munge.key"
    rm -f "$STATE/munge/munge.socket" "$STATE/munge/munge.socket.lock"
    munged --force --socket="$STATE/munge/munge.socket" --key-file="$STATE/munge/munge.key" \
        --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
        --seed-file="$STATE/munge/munged.seed" || { log_tail munged; die "munged did not start"; }
    say "munged started"
fi
munge -S "$STATE/munge/munge.socket" -n </dev/null | unmunge -S "$STATE/munge/munge.socket" >/dev/null \
    || { log_tail munged; die "munge does not answer on $STATE/munge/munge.socket"; }

if ! alive slurmctld; then
    # -i: start even if saved state from an earlier run cannot be read.
    slurmctld -i -f "$SLURM_CONF" || { log_tail slurmctld; die "slurmctld did not start"; }
    say "slurmctld started"
fi
if ! alive slurmd; then
    slurmd -f "$SLURM_CONF" || { log_tail slurmd; die "slurmd did not start"; }
    say "slurmd started"
fi

# --- wait until the controller answers and the node is usable -------------------------------------------
deadline=$((SECONDS + WAIT_S))
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
    ((SECONDS < deadline)) || { log_tail slurmctld; die "slurmctld does not answer scontrol ping after ${WAIT_S}s"; }
    sleep 0.5
done
node_state() { scontrol show node "$HOST" 2>/dev/null | sed -n 's/.*State=\([A-Z+_]*\).*/\1/p' | head -n 1; }
resumed=0
while true; do
    state=$(node_state)
    case $state in
        IDLE* | MIXED* | ALLOCATED*) break ;;
        DOWN* | DRAIN*)
            if ((!resumed)); then scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true; resumed=1; fi ;;
    esac
    if ((SECONDS >= deadline)); then
        scontrol show node "$HOST" >&2 || true
        log_tail slurmd
        die "node $HOST is '${state:-unknown}', not idle, after ${WAIT_S}s"
    fi
    sleep 0.5
done

# --- the course's reservation --------------------------------------------------------------------------
# MAGNETIC: jobs of the reservation's users land in it even without --reservation, so the one node stays
# usable for jobs that do not name it (on JURECA those would run on the nodes outside the reservation).
users=root
[[ -n ${SUDO_USER:-} && ${SUDO_USER} != root ]] && users+=",$SUDO_USER"
if ! scontrol show reservation "$RESERVATION" >/dev/null 2>&1; then
    scontrol create reservation ReservationName="$RESERVATION" Users="$users" Nodes="$HOST" \
        PartitionName="$PARTITION" StartTime=now Duration=infinite Flags=MAGNETIC,IGNORE_JOBS >/dev/null \
        || die "could not create reservation $RESERVATION (see $STATE/log/slurmctld.log)"
    say "reservation $RESERVATION created for $users"
fi

say "cluster is up: node $HOST ($(node_state)), partition $PARTITION, gres gpu:4, reservation $RESERVATION"
say "state, logs and configuration: $STATE (slurm.conf linked from $SYSTEM_CONF)"
say "use it:  sinfo; sbatch --chdir=DIR slurm/jureca-matrix.sbatch; squeue; scontrol show job ID;" \
    "stop: bash $HERE/stop.sh"
