#!/usr/bin/env bash
# Start a one-machine Slurm cluster as strict as JURECA-DC, so the course's batch scripts run here unchanged and
# their mistakes show here as they would there.
#
#   sudo bash slurm/local-cluster/start.sh      # start (or check) the cluster; safe to run again
#   sudo bash slurm/local-cluster/stop.sh       # stop exactly the daemons started here (--purge: and its state)
#
# What it sets up, all of it under one state folder ($COURSE_SLURM_STATE, default /tmp/course-slurm):
#   munged (own key and socket); MariaDB (private datadir, own socket, a loopback port) and slurmdbd for
#   accounting, with the account training2441 whose members are the course users; slurmctld and two slurmd,
#   the compute nodes dc01 and dc02 of partition dc-gpu (the default), each with GRES gpu:4 backed by
#   character-device stand-ins; cores bound per task (srun needs SRUN_CPUS_PER_TASK, as on JURECA); memory
#   enforced; the reservation training2441 for the course users (never root); Lmod module files named like
#   JSC's (Stages/2024, GCC, OpenMPI, Python, PyTorch) that expose the project's Python environment (.venv)
#   on the compute nodes, and a task prolog that makes `module` work inside batch scripts.
# Outside the state folder: missing apt packages; the link /etc/slurm/slurm.conf -> the state folder's
# slurm.conf, because every Slurm command reads that path; the course user `course` (useradd) when missing;
# a marked block in /etc/hosts that names the nodes as JSC does (dc01, and dc01i for its InfiniBand address).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLUSTER=course-local
source "$HERE/profile.sh"  # $STATE, $COURSE_USER, what stop.sh takes back; the values the harness reads too
RESERVATION=$(profile_value reservation)
ACCOUNT=$(profile_value account)
PARTITION=$(profile_value partition)
GPUS=$(profile_value gpus_per_node)
NODES=(dc01 dc02)
WAIT_S=${COURSE_SLURM_WAIT_S:-90}
CTLD_PORT=${COURSE_SLURM_CTLD_PORT:-6817}
DC01_PORT=${COURSE_SLURM_SLURMD_PORT:-6818}
DBD_PORT=${COURSE_SLURM_DBD_PORT:-6819}
DC02_PORT=${COURSE_SLURM_SLURMD2_PORT:-6820}
DB_PORT=${COURSE_SLURM_DB_PORT:-6821}
LMOD_INIT=/usr/share/lmod/lmod/init/bash
GCC_VERSION=12.3.0   # the versions JSC's Stages/2024 carries
MPI_VERSION=4.1.5

die() { echo "start.sh: error: $*" >&2; exit 1; }
say() { echo "start.sh: $*"; }

[[ $(id -u) -eq 0 ]] || die "needs root (daemons, mknod, /etc/slurm, /etc/hosts): run it as root: bash $0"
# Inherited descriptors are not passed on to the daemons: `flock /tmp/course-cluster.lock bash start.sh` hands
# its lock over as fd 3, and munged, mariadbd and slurmdbd keep what they inherit open, so they would hold the
# lock for as long as they run and every later `flock` would wait for ever. (255: the script bash is reading.)
for fd_path in /proc/$$/fd/*; do
    fd=${fd_path##*/}
    if ((fd > 2 && fd != 255)); then eval "exec $fd>&-" 2>/dev/null || true; fi
done
[[ $STATE == /* ]] || die "COURSE_SLURM_STATE must be an absolute path, not '$STATE'"

# --- packages -------------------------------------------------------------------------------------------
PACKAGES=(slurm-wlm slurmdbd mariadb-server munge lmod)
missing=()
for cmd in slurmctld slurmd sbatch sacctmgr slurmdbd munged mariadbd mariadb-install-db mariadb; do
    command -v "$cmd" >/dev/null || [[ -x /usr/sbin/$cmd ]] || missing+=("$cmd")
done
[[ -f $LMOD_INIT ]] || missing+=(lmod)
if ((${#missing[@]})); then
    say "missing ${missing[*]}: installing ${PACKAGES[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null \
        || die "apt-get install ${PACKAGES[*]} failed (network or apt sources?)"
fi
export PATH=$PATH:/usr/sbin:/sbin

# --- the project's Python environment, which the PyTorch module exposes -------------------------------
VENV_PY=$ROOT/.venv/bin/python
[[ -x $VENV_PY ]] || die "no project environment at $ROOT/.venv: run ./setup.sh first"
PYTHON_REAL=$(readlink -f "$VENV_PY")
VENV_SITE=$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
PY_VERSION=$("$PYTHON_REAL" -c 'import platform; print(platform.python_version())')
TORCH_VERSION=$("$VENV_PY" -c 'from importlib.metadata import version; print(version("torch").split("+")[0])' \
    2>/dev/null) || die "torch is not installed in $ROOT/.venv: run ./setup.sh first"
VISION_VERSION=$("$VENV_PY" -c 'from importlib.metadata import version; print(version("torchvision").split("+")[0])' \
    2>/dev/null) || die "torchvision is not installed in $ROOT/.venv: run ./setup.sh first"

# --- the course users: jobs run as them, never as root ------------------------------------------------
if ! id -u "$COURSE_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$COURSE_USER" || die "useradd $COURSE_USER failed"
    say "created the user $COURSE_USER"
fi
USERS=("$COURSE_USER")
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root && $SUDO_USER != "$COURSE_USER" ]] && id -u "$SUDO_USER" >/dev/null 2>&1
then
    USERS+=("$SUDO_USER")
fi
USERS_CSV=$(IFS=,; echo "${USERS[*]}")
# The modules hand the project's environment to the course users' jobs: they must be able to read it.
for u in "${USERS[@]}"; do
    runuser -u "$u" -- test -x "$PYTHON_REAL" -a -r "$VENV_SITE/torch/__init__.py" \
        || die "user $u cannot read the project environment ($PYTHON_REAL, $VENV_SITE): make $ROOT readable (chmod o+rX)"
done

# --- the state folder ---------------------------------------------------------------------------------
mkdir -p "$STATE"/{etc,log,run,ctld,munge,python-bin} "${NODES[@]/#/$STATE/slurmd/}" "${NODES[@]/#/$STATE/dev/}"
chmod 755 "$STATE" "$STATE"/{etc,log,run}
chmod 755 "$STATE/munge"  # users reach munged through its socket; the key inside stays 0600
export SLURM_CONF=$STATE/etc/slurm.conf
printf '%s\n' "${USERS[@]}" >"$STATE/etc/users.new" && mv "$STATE/etc/users.new" "$STATE/etc/users"
chmod 644 "$STATE/etc/users"

# --- JSC's file systems for the course user: a home with a file quota, $PROJECT and $SCRATCH -------------
# (this section only; slurm/local-cluster/README.md, "The home quota", says why and how to try it)
# JSC: $HOME 10,000 files soft / 11,000 hard (JSC FAQ "What data quotas do exist and how to list usage?"). The
# stand-ins here are far smaller than the real things, so the file limit is scaled by the same factor as the data
# set, the part of a student's files that breaks the real quota: the real Pets hold 7,390 pictures plus one trimap
# per picture in annotations/ (so at least 14,780 files), Mini-Pets 444 pictures and no annotations (factor 0.030).
# 11,000 x 444 / 14,780 = 330 files (and 10,000 x 0.030 = 300 for the soft limit jutil reports). On JURECA the Pets
# alone exceed the home's quota; here Mini-Pets alone (452 inodes with its folders) exceed 330 the same way, while
# the home the book asks for (dot files, the ~/course link) needs a few dozen. Bytes are not scaled (1 GiB).
HOME_FILES_HARD=${COURSE_HOME_FILES:-330}
HOME_FILES_SOFT=$((HOME_FILES_HARD * 10000 / 11000))
HOME_BYTES=1g
FS_ROOT=$STATE/p          # JSC: /p/project1/<project>, /p/scratch/<project>
quota_home() {  # mount a tmpfs with nr_inodes on the course user's home; keep (copy in) what the home held
    local home uid gid mode seed options
    home=$(getent passwd "$COURSE_USER" | cut -d: -f6)
    [[ $home == /?* ]] || die "the home of $COURSE_USER is '$home', not an absolute path"
    uid=$(id -u "$COURSE_USER") gid=$(id -g "$COURSE_USER")
    mkdir -p "$home"
    if mountpoint -q "$home"; then
        options=$(findmnt -n -r -o SOURCE,FSTYPE,OPTIONS --mountpoint "$home")
        [[ $options == "$HOME_SOURCE tmpfs "* ]] \
            || die "$home is already a mount point ($options), not this cluster's home: unmount it, then run again"
        if [[ $options != *"nr_inodes=$HOME_FILES_HARD"* ]]; then
            mount -o "remount,nr_inodes=$HOME_FILES_HARD" "$home" \
                || die "cannot set the file limit of $home to $HOME_FILES_HARD (it holds more files: df -i $home)"
            say "home of $COURSE_USER: file limit now $HOME_FILES_HARD"
        fi
        return 0
    fi
    local files biggest
    files=$(find "$home" -xdev | wc -l)
    if ((files > HOME_FILES_HARD)); then
        biggest=$(cd "$home" && for e in * .[!.]*; do
                [[ -e $e ]] || continue; echo "$(find "$e" -xdev | wc -l) $e"
            done | sort -rn | head -n 3 | awk '{printf "%s%s (%s files)", (NR > 1 ? ", " : ""), $2, $1}')
        die "$home holds $files files, more than the home's limit of $HOME_FILES_HARD: move them out" \
            "(most in: $biggest), e.g. a course venv of the old layout to \$PROJECT, then run again"
    fi
    mode=$(stat -c %a "$home")
    seed=$(mktemp -d "$STATE/home-seed.XXXXXX")
    cp -a "$home/." "$seed/"
    mount -t tmpfs -o "size=$HOME_BYTES,nr_inodes=$HOME_FILES_HARD,mode=$mode,uid=$uid,gid=$gid" \
        "$HOME_SOURCE" "$home" || die "mount -t tmpfs on $home failed"
    cp -a "$seed/." "$home/" || { umount "$home"; die "could not copy the files of $home into its tmpfs (kept on disk)"
    }
    rm -rf "$seed"
    say "home of $COURSE_USER: $home, a tmpfs of at most $HOME_FILES_HARD files (JSC's 11,000 scaled to the stand-ins)"
}
project_dirs() {  # $PROJECT_<account> and $SCRATCH_<account>, writable by every course user (sticky, like /tmp)
    mkdir -p "$FS_ROOT/project1/$ACCOUNT" "$FS_ROOT/scratch/$ACCOUNT"
    chmod 755 "$FS_ROOT" "$FS_ROOT/project1" "$FS_ROOT/scratch"
    chmod 1777 "$FS_ROOT/project1/$ACCOUNT" "$FS_ROOT/scratch/$ACCOUNT"
    cat >"$STATE/etc/jutil.sh.new" <<JUTIL
# Written by slurm/local-cluster/start.sh: JSC's login environment, as far as the course uses it. Source it.
# At JSC every member's login shell has \$PROJECT_<project> and \$SCRATCH_<project>; \`jutil env activate -p\`
# exports them as \$PROJECT and \$SCRATCH; \`jutil user dataquota\` lists usage and limits.
export PROJECT_$ACCOUNT=\${PROJECT_$ACCOUNT:-$FS_ROOT/project1/$ACCOUNT}
export SCRATCH_$ACCOUNT=\${SCRATCH_$ACCOUNT:-$FS_ROOT/scratch/$ACCOUNT}
jutil() {
    if [[ \${1:-} == env && \${2:-} == activate && \${3:-} == -p && -n \${4:-} ]]; then
        local project=PROJECT_\$4 scratch=SCRATCH_\$4
        if [[ -z \${!project:-} ]]; then
            echo "jutil: you are not a member of project '\$4' (here: $ACCOUNT)" >&2; return 1
        fi
        export PROJECT=\${!project} SCRATCH=\${!scratch}
    elif [[ \${1:-} == user && \${2:-} == dataquota ]]; then
        $STATE/etc/jutil-dataquota
    else
        echo "jutil (local stand-in): only 'jutil env activate -p <project>' and 'jutil user dataquota'" >&2
        return 2
    fi
}
JUTIL
    mv "$STATE/etc/jutil.sh.new" "$STATE/etc/jutil.sh"
    cat >"$STATE/etc/jutil-dataquota.new" <<DATAQUOTA
#!/usr/bin/env bash
# jutil user dataquota, local stand-in: the files and bytes of \$HOME and the project's folders, with the limits
# (the home's are this cluster's scaled ones, the others JSC's: JSC FAQ "What data quotas do exist").
set -euo pipefail
row() {  # row NAME FOLDER USED-FILES SOFT HARD
    printf '%-10s %-44s %10s %10s %10s %8s\n' "\$1" "\$2" "\$3" "\$4" "\$5" "\$(du -sh "\$2" 2>/dev/null | cut -f1)"
}
printf '%-10s %-44s %10s %10s %10s %8s\n' "filesystem" "folder" "files" "soft" "hard" "bytes"
home_used=\$(df --output=iused "\$HOME" | tail -n 1 | tr -d ' ')
row HOME "\$HOME" "\$home_used" $HOME_FILES_SOFT $HOME_FILES_HARD
project=\${PROJECT_$ACCOUNT:-$FS_ROOT/project1/$ACCOUNT} scratch=\${SCRATCH_$ACCOUNT:-$FS_ROOT/scratch/$ACCOUNT}
row PROJECT "\$project" "\$(find "\$project" 2>/dev/null | wc -l)" 3000000 3000000
row SCRATCH "\$scratch" "\$(find "\$scratch" 2>/dev/null | wc -l)" 4000000 4000000
DATAQUOTA
    mv "$STATE/etc/jutil-dataquota.new" "$STATE/etc/jutil-dataquota"
    chmod 644 "$STATE/etc/jutil.sh"
    chmod 755 "$STATE/etc/jutil-dataquota"
    printf '%s\n' "# Written by slurm/local-cluster/start.sh, removed by stop.sh: JSC's jutil and project variables" \
        "[ -r $STATE/etc/jutil.sh ] && . $STATE/etc/jutil.sh" >"$PROFILE_D"
}
quota_home
project_dirs

HOST=$(hostname -s)
# `slurmd -C` prints this machine's real layout. Each node is declared with the machine's real CPU count, as
# that many sockets of one core (so TaskPluginParam=Cores binds a task to exactly the cores it asked for), and
# 45 % of the memory: both slurmd report the whole machine, and slurmd drains a node that reports less than
# configured. A job asking for more than a node has (JURECA's 128 cores) is rejected at submission.
HW=$(slurmd -C) || die "slurmd -C failed"
HW=${HW%%$'\n'*}
[[ $HW == "NodeName=$HOST "* ]] || die "slurmd -C names the node '${HW%% *}', hostname -s says '$HOST'"
[[ $HW =~ CPUs=([0-9]+) ]] || die "slurmd -C prints no CPUs= ($HW)"
CPUS=${BASH_REMATCH[1]}
[[ $HW =~ RealMemory=([0-9]+) ]] || die "slurmd -C prints no RealMemory= ($HW)"
NODE_MEM=$((BASH_REMATCH[1] * 45 / 100))
NODE_HW="CPUs=$CPUS Boards=1 SocketsPerBoard=$CPUS CoresPerSocket=1 ThreadsPerCore=1 RealMemory=$NODE_MEM"
MEM_PER_CPU=$((NODE_MEM / CPUS))

# Memory enforcement: task/cgroup where this machine has a writable cgroup-v1 memory controller (the kernel
# kills a job over --mem and Slurm records OUT_OF_MEMORY); else slurmstepd's own polling kills it (every 5 s,
# and the job ends FAILED, not OUT_OF_MEMORY). COURSE_SLURM_NO_CGROUP=1 chooses the latter.
CGROUP_MEM=/sys/fs/cgroup/memory
if [[ -z ${COURSE_SLURM_NO_CGROUP:-} && -f $CGROUP_MEM/memory.limit_in_bytes ]] \
    && mkdir -p "$CGROUP_MEM/course-slurm-probe" 2>/dev/null && rmdir "$CGROUP_MEM/course-slurm-probe"; then
    TASK_PLUGIN=task/cgroup,task/affinity
    MEMORY_KILL="# memory is enforced by task/cgroup (cgroup.conf)"
else
    TASK_PLUGIN=task/affinity
    MEMORY_KILL="JobAcctGatherParams=OverMemoryKill"
fi

DB_PASS_FILE=$STATE/etc/db-password
[[ -s $DB_PASS_FILE ]] || (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DB_PASS_FILE")
DB_PASS=$(cat "$DB_PASS_FILE")

render() {  # render TEMPLATE DEST: fill in the @NAME@ placeholders; false when DEST did not change
    sed -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$HOST|g" -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@NODE_HW@|$NODE_HW|g" \
        -e "s|@MEM_PER_CPU@|$MEM_PER_CPU|g" -e "s|@TASK_PLUGIN@|$TASK_PLUGIN|g" -e "s|@MEMORY_KILL@|$MEMORY_KILL|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" -e "s|@DB_PORT@|$DB_PORT|g" \
        -e "s|@DC01_PORT@|$DC01_PORT|g" -e "s|@DC02_PORT@|$DC02_PORT|g" -e "s|@DB_PASS@|$DB_PASS|g" \
        -e "s|@LMOD_INIT@|$LMOD_INIT|g" -e "s|@MODULEROOT@|$STATE/modulefiles|g" \
        -e "s|@GCC_VERSION@|$GCC_VERSION|g" -e "s|@MPI_VERSION@|$MPI_VERSION|g" \
        -e "s|@PY_VERSION@|$PY_VERSION|g" -e "s|@TORCH_VERSION@|$TORCH_VERSION|g" \
        -e "s|@VISION_VERSION@|$VISION_VERSION|g" -e "s|@PARTITION@|$PARTITION|g" -e "s|@GPUS@|$GPUS|g" \
        -e "s|@LAST_GPU@|$((GPUS - 1))|g" \
        -e "s|@PYTHON_BIN@|$STATE/python-bin|g" -e "s|@VENV_SITE@|$VENV_SITE|g" "$1" >"$2.new"
    if [[ -f $2 ]] && cmp -s "$2.new" "$2"; then rm -f "$2.new"; return 1; fi
    mv "$2.new" "$2"
}

ctl_changed=0 dbd_changed=0
render "$HERE/slurm.conf.in" "$STATE/etc/slurm.conf" && ctl_changed=1
render "$HERE/gres.conf.in" "$STATE/etc/gres.conf" && ctl_changed=1
render "$HERE/cgroup.conf.in" "$STATE/etc/cgroup.conf" && ctl_changed=1
(umask 077 && render "$HERE/slurmdbd.conf.in" "$STATE/etc/slurmdbd.conf") && dbd_changed=1
db_changed=0
render "$HERE/mariadb.cnf.in" "$STATE/etc/mariadb.cnf" && db_changed=1
chmod 600 "$STATE/etc/slurmdbd.conf"   # slurmdbd refuses a readable one: it holds the database password
chmod 644 "$STATE/etc/slurm.conf" "$STATE/etc/gres.conf" "$STATE/etc/cgroup.conf" "$STATE/etc/mariadb.cnf"
render "$HERE/task-prolog.sh.in" "$STATE/etc/task-prolog.sh" || true
chmod 755 "$STATE/etc/task-prolog.sh"
# A stand-in for nvidia-smi, on the compute nodes' PATH only (the task prolog puts node-bin there); stop.sh removes it.
mkdir -p "$STATE/node-bin"
render "$HERE/nvidia-smi.in" "$STATE/node-bin/nvidia-smi" || true
chmod 755 "$STATE/node-bin" "$STATE/node-bin/nvidia-smi"
# An empty plugstack.conf beside slurm.conf keeps the daemons from reading one meant for another cluster.
: >"$STATE/etc/plugstack.conf"

# The "GPUs": per node gpus_per_node (4) character devices with the numbers of /dev/null.
for node in "${NODES[@]}"; do
    for ((i = 0; i < GPUS; i++)); do
        dev=$STATE/dev/$node/nvidia$i
        [[ -c $dev ]] || mknod "$dev" c 1 3 || die "mknod $dev failed"
    done
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
place torchvision "Stages/2024/MPI/GCC/$GCC_VERSION/OpenMPI/$MPI_VERSION/torchvision/$VISION_VERSION.lua"
# The stage's own versions beside them, where setup.sh built them (COURSE_STAGE_2024=1, in CI): JURECA's Stages/2024
# has PyTorch 2.1.2, built against NumPy 1.x; this tree (.venv-stage2024: torch, torchvision and NumPy from PyPI)
# serves them as PyTorch/<v> and torchvision/<v>. A plain `module load PyTorch` still takes the newest version.
STAGE_VENV=$ROOT/.venv-stage2024
if [[ -f $STAGE_VENV/complete ]] && stage=$("$STAGE_VENV/bin/python" -c 'import sysconfig
from importlib.metadata import version as v
print(sysconfig.get_path("purelib"), v("torch").split("+")[0], v("torchvision").split("+")[0])'); then
    read -r stage_site stage_torch stage_vision <<<"$stage"
    (
        VENV_SITE=$stage_site TORCH_VERSION=$stage_torch VISION_VERSION=$stage_vision
        place PyTorch "Stages/2024/MPI/GCC/$GCC_VERSION/OpenMPI/$MPI_VERSION/PyTorch/$stage_torch.lua"
        place torchvision "Stages/2024/MPI/GCC/$GCC_VERSION/OpenMPI/$MPI_VERSION/torchvision/$stage_vision.lua"
    )
fi
# The Python module puts a folder of its own first on PATH, holding only `python` and `python3`, as JSC's
# module does: putting the interpreter's folder there (Debian's /usr/bin) would shadow every command after it.
ln -sfn "$PYTHON_REAL" "$STATE/python-bin/python"
ln -sfn "$PYTHON_REAL" "$STATE/python-bin/python3"
chmod -R a+rX "$MODS" "$STATE/python-bin"

# --- /etc/slurm/slurm.conf -> the state folder ----------------------------------------------------------
mkdir -p "$(dirname "$SYSTEM_CONF")"
if [[ -e $SYSTEM_CONF && ! -L $SYSTEM_CONF ]]; then
    die "$SYSTEM_CONF is a real file, not this cluster's link: move it away, then run again"
fi
[[ $(readlink "$SYSTEM_CONF" 2>/dev/null) == "$SLURM_CONF" ]] || ln -sfn "$SLURM_CONF" "$SYSTEM_CONF"

# --- /etc/hosts: the nodes by name, and by their "InfiniBand" name as at JSC (jrc0001 -> jrc0001i) -------
hosts_line="127.0.0.1"
for node in "${NODES[@]}"; do hosts_line+=" $node ${node}i"; done
hosts_now=$(cat "$HOSTS")
hosts_other=$(hosts_without_block)
hosts_want=$(printf '%s\n%s\n%s\n%s' "$hosts_other" "$HOSTS_BEGIN" "$hosts_line" "$HOSTS_END")
# Written in place (not replaced): in a container /etc/hosts is often a mounted file.
[[ $hosts_now == "$hosts_want" ]] || printf '%s\n' "$hosts_want" >"$HOSTS" || die "cannot write $HOSTS"

# --- daemons --------------------------------------------------------------------------------------------
log_tail() { echo "--- last lines of $STATE/log/$1.log ---" >&2; tail -n 20 "$STATE/log/$1.log" >&2 2>/dev/null || true; }
stop_daemons() {  # stop_daemons NAME...: SIGTERM to all at once, wait up to 10 s, then SIGKILL
    local name pids=()
    for name; do
        alive "$name" || continue
        pids+=("$(pid_of "$name")")
        kill "${pids[-1]}" 2>/dev/null || true
    done
    local pid
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for name; do rm -f "$STATE/run/$name.pid"; done
}
wait_for() {  # wait_for WHAT LOG COMMAND...: until COMMAND succeeds, at most WAIT_S
    local what=$1 log=$2 deadline=$((SECONDS + WAIT_S)); shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { log_tail "$log"; die "$what after ${WAIT_S}s"; }
        sleep 0.3
    done
}

if ((ctl_changed)) && { alive slurmctld || alive slurmd.dc01 || alive slurmd.dc02; }; then
    say "configuration changed: restarting slurmctld and both slurmd"
    # The controller first: stopping it with its nodes already gone makes it wait for messages it cannot send.
    stop_daemons slurmctld
    stop_daemons slurmd.dc01 slurmd.dc02 slurmd
fi
if ((dbd_changed || db_changed)) && alive slurmdbd; then
    say "slurmdbd.conf or mariadb.cnf changed: restarting slurmdbd"
    stop_daemons slurmdbd
fi
if ((db_changed)) && alive mariadbd; then
    say "mariadb.cnf changed: restarting mariadbd"
    stop_daemons mariadbd
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

# MariaDB for slurmdbd (etc/mariadb.cnf): a private datadir, its own socket, a loopback port.
DB_DIR=$STATE/mariadb DB_SOCK=$STATE/run/mariadb.sock
sql() { mariadb --no-defaults --socket="$DB_SOCK" --user=root --batch --skip-column-names "$@"; }
if [[ ! -d $DB_DIR/mysql ]]; then
    rm -rf "$DB_DIR"
    mkdir -p "$DB_DIR"
    mariadb-install-db --no-defaults --user=root --datadir="$DB_DIR" --auth-root-authentication-method=socket \
        --skip-test-db >"$STATE/log/mariadb-install-db.log" 2>&1 \
        || { log_tail mariadb-install-db; die "mariadb-install-db into $DB_DIR failed"; }
    chmod 700 "$DB_DIR"
fi
if ! alive mariadbd; then
    rm -f "$DB_SOCK"
    setsid mariadbd --defaults-file="$STATE/etc/mariadb.cnf" </dev/null >/dev/null 2>&1 &
    wait_for "mariadbd does not answer on $DB_SOCK" mariadb sql -e 'SELECT 1'
    say "mariadbd started (port $DB_PORT)"
fi
sql <<SQL || die "could not create the database user slurm (see $STATE/log/mariadb.log)"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

if ! alive slurmdbd; then
    slurmdbd || { log_tail slurmdbd; die "slurmdbd did not start"; }
    wait_for "slurmdbd does not answer sacctmgr" slurmdbd sacctmgr -n -P list cluster
    say "slurmdbd started (port $DBD_PORT)"
fi

# Associations, as on JURECA: the project's account with the course users as its members; root is not one.
# One line per association of the account: "training2441|" (the account itself), "training2441|course", ...
assocs=$(sacctmgr -n -P list assoc cluster="$CLUSTER" account="$ACCOUNT" format=account,user 2>/dev/null) || assocs=""
members=$(cut -d'|' -f2 <<<"$assocs" | sed '/^$/d')
if [[ -z $assocs ]]; then  # no account yet: the cluster and the account first
    [[ -n $(sacctmgr -n -P list cluster name="$CLUSTER" format=cluster 2>/dev/null) ]] \
        || sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="course project" Organization=jsc \
        >/dev/null || die "sacctmgr add account $ACCOUNT failed"
fi
for u in "${USERS[@]}"; do
    grep -qx "$u" <<<"$members" \
        || sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" >/dev/null \
        || die "sacctmgr add user $u to account $ACCOUNT failed"
done
# Members no longer listed (root, or the sudo user of an earlier run) leave the account.
for u in $(sort -u <<<"$members"); do
    [[ " ${USERS[*]} " == *" $u "* ]] && continue
    sacctmgr -i remove user "$u" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null \
        && say "user $u is no longer a member of account $ACCOUNT"
done

if ! alive slurmctld; then
    # -i: start even if saved state from an earlier run cannot be read.
    slurmctld -i -f "$SLURM_CONF" || { log_tail slurmctld; die "slurmctld did not start"; }
    say "slurmctld started (port $CTLD_PORT)"
fi
for node in "${NODES[@]}"; do
    if ! alive "slurmd.$node"; then
        slurmd -N "$node" -f "$SLURM_CONF" || { log_tail "slurmd.$node"; die "slurmd -N $node did not start"; }
        say "slurmd for node $node started"
    fi
done

# --- wait until the controller answers and both nodes are usable ----------------------------------------
deadline=$((SECONDS + WAIT_S))
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
    ((SECONDS < deadline)) || { log_tail slurmctld; die "slurmctld does not answer scontrol ping after ${WAIT_S}s"; }
    sleep 0.3
done
node_state() { scontrol show node "$1" 2>/dev/null | sed -n 's/.*State=\([A-Z+_]*\).*/\1/p' | head -n 1; }
for node in "${NODES[@]}"; do
    resumed=0
    while true; do
        state=$(node_state "$node")
        case $state in
            IDLE* | MIXED* | ALLOCATED*) break ;;
            DOWN* | DRAIN*)
                if ((!resumed)); then scontrol update NodeName="$node" State=RESUME 2>/dev/null || true; resumed=1; fi ;;
        esac
        if ((SECONDS >= deadline)); then
            scontrol show node "$node" >&2 || true
            log_tail "slurmd.$node"
            die "node $node is '${state:-unknown}', not idle, after ${WAIT_S}s"
        fi
        sleep 0.3
    done
done

# --- the course's reservation --------------------------------------------------------------------------
# MAGNETIC: jobs of the reservation's users land in it even without --reservation. Only the course users are
# in it, not root: as on JURECA, nobody computes as root.
nodes_csv=$(IFS=,; echo "${NODES[*]}")
if ! resv=$(scontrol show reservation "$RESERVATION" -o 2>/dev/null); then
    scontrol create reservation ReservationName="$RESERVATION" Users="$USERS_CSV" Nodes="$nodes_csv" \
        PartitionName="$PARTITION" StartTime=now Duration=infinite Flags=MAGNETIC,IGNORE_JOBS >/dev/null \
        || die "could not create reservation $RESERVATION (see $STATE/log/slurmctld.log)"
    say "reservation $RESERVATION created for $USERS_CSV"
elif [[ ! $resv =~ (^| )Users=$USERS_CSV( |$) ]]; then
    scontrol update ReservationName="$RESERVATION" Users="$USERS_CSV" >/dev/null \
        || die "could not set the users of reservation $RESERVATION to $USERS_CSV"
    say "reservation $RESERVATION now for $USERS_CSV"
fi

say "cluster is up: nodes ${NODES[*]} ($(node_state dc01), $(node_state dc02)), partition $PARTITION, gres gpu:$GPUS each," \
    "account and reservation $RESERVATION for $USERS_CSV"
say "state, logs and configuration: $STATE (slurm.conf linked from $SYSTEM_CONF)"
say "use it as the course user:  runuser -u $COURSE_USER -- sbatch --chdir=DIR slurm/jureca-matrix.sbatch;" \
    "squeue --me; sacct; stop: sudo bash $HERE/stop.sh"
