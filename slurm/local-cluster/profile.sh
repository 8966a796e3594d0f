# Sourced by start.sh and stop.sh: what the two must agree on, written once. The state folder, the course user and
# what start.sh puts outside the state folder for stop.sh to take back; and the local cluster's values that the
# harness reads too (partition, account, reservation, GPUs per node), from its site profile slurm/sites/local.toml.
STATE=${COURSE_SLURM_STATE:-/tmp/course-slurm}
COURSE_USER=course   # always a course user, also when nobody ran start.sh through sudo
SYSTEM_CONF=/etc/slurm/slurm.conf   # every Slurm command reads this path: a link to the state folder's slurm.conf
HOSTS=/etc/hosts   # a marked block names the nodes
HOSTS_BEGIN="# >>> course local Slurm cluster: written by slurm/local-cluster/start.sh, removed by stop.sh >>>"
HOSTS_END="# <<< course local Slurm cluster <<<"
HOME_SOURCE=course-home   # the tmpfs on the course user's home, by its name in /proc/mounts: stop.sh unmounts only it
PROFILE_D=/etc/profile.d/course-local-cluster.sh   # login shells get jutil and $PROJECT_<project>, as at JSC
PROFILE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../sites" && pwd)/local.toml

hosts_without_block() {  # /etc/hosts as it is without the cluster's marked block
    awk -v b="$HOSTS_BEGIN" -v e="$HOSTS_END" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$HOSTS"
}

pid_of() { [[ -s $STATE/run/$1.pid ]] && cat "$STATE/run/$1.pid"; }   # pid_of DAEMON: its pid file's pid
alive() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null; }   # alive DAEMON: does it run?

profile_value() {  # profile_value KEY: a top-level string or number of the profile; fails naming the key
    local value
    value=$(awk -v key="$1" '/^\[/ {exit} $1 == key && $2 == "=" {v = $3; gsub(/"/, "", v); print v; exit}' "$PROFILE")
    [[ -n $value ]] || { echo "local cluster: error: $PROFILE has no top-level key '$1'" >&2; return 1; }
    echo "$value"
}
