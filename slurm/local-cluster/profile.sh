# Sourced by start.sh and stop.sh: the local cluster's values that the harness reads too (partition, account,
# reservation, GPUs per node) come from one place, its site profile slurm/sites/local.toml.
PROFILE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../sites" && pwd)/local.toml

profile_value() {  # profile_value KEY: a top-level string or number of the profile; fails naming the key
    local value
    value=$(awk -v key="$1" '/^\[/ {exit} $1 == key && $2 == "=" {v = $3; gsub(/"/, "", v); print v; exit}' "$PROFILE")
    [[ -n $value ]] || { echo "local cluster: error: $PROFILE has no top-level key '$1'" >&2; return 1; }
    echo "$value"
}
