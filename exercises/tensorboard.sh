#!/usr/bin/env bash
# Exercise 3, step 1 -- run this on the LOGIN node, in the folder where cats.py wrote runs/.
#
# Starts TensorBoard over the training run's event files. It listens on 127.0.0.1 only: the login
# node is shared with hundreds of users, and a dashboard bound to every address would be open to
# all of them. You reach it from your laptop through an SSH tunnel (tunnel.sh) instead.
#
# Usage:   bash tensorboard.sh [LOGDIR]
#   LOGDIR  folder with the event files (argument or env var; default: runs)
#   PORT    port on the login node (env var; default: 9999). Many course members share one login
#           node and each port can be used only once: pick your own number between 10000 and 60000.
# Stop it with Ctrl+C (it runs in the foreground; the tunnel needs it running).
set -euo pipefail

logdir="${1:-${LOGDIR:-runs}}"
port="${PORT:-9999}"

if [[ ! -d "$logdir" ]]; then
    echo "error: no folder '$logdir': run cats.py first (it writes runs/) or give the folder as LOGDIR" >&2
    exit 2
fi
if ! [[ "$port" =~ ^[0-9]+$ ]] || (( port < 1024 || port > 65535 )); then
    echo "error: PORT='$port' is not a port number from 1024 to 65535" >&2
    exit 2
fi
if ! command -v tensorboard >/dev/null; then
    echo "error: tensorboard not found: activate the course venv first (source venv-template/activate.sh)" >&2
    exit 2
fi

echo "TensorBoard on 127.0.0.1:$port over '$logdir' (on your laptop: LOCAL_PORT=$port REMOTE_PORT=$port bash tunnel.sh)"
# --- your work ---
# TODO: start TensorBoard over "$logdir" on port "$port", listening on 127.0.0.1 only, and
# start it with exec so that stopping this script stops TensorBoard. Then delete the echo line.
echo "TODO: tensorboard.sh: write the tensorboard command between the 'your work' lines" >&2; exit 3
# --- end of your work ---
