#!/usr/bin/env bash
# Exercise 3, step 2 -- run this on YOUR LAPTOP, while tensorboard.sh runs on the login node.
#
# The login node's ports sit behind the centre's firewall; only SSH (port 22) gets through. An SSH
# local port forward carries TensorBoard through that one open door: your laptop listens on
# LOCAL_PORT, and every connection to it comes out on the login node as a connection to
# localhost:REMOTE_PORT, where TensorBoard listens.
#
# Usage:   bash tunnel.sh [USER@HOST] [extra ssh options...]
#   USER@HOST    who you are on which login node (default: $LOGIN_USER@$LOGIN_HOST)
#   LOGIN_USER   your JuDoor user name (env var; default: $USER)
#   LOGIN_HOST   the login node (env var; default: jureca.fz-juelich.de, JURECA-DC)
#   REMOTE_PORT  the PORT tensorboard.sh uses on the login node (env var; default: 9999)
#   LOCAL_PORT   the port on your laptop (env var; default: REMOTE_PORT)
#   extra options go to ssh as they are, e.g.  -i ~/.ssh/id_ed25519_jsc  or  -p 2222
# Stop it with Ctrl+C. The same tunnel as a ~/.ssh/config entry: see ../solutions/ssh_config.example.
set -euo pipefail

destination="${LOGIN_USER:-${USER:-}}@${LOGIN_HOST:-jureca.fz-juelich.de}"
if [[ $# -gt 0 && "$1" != -* ]]; then
    destination="$1"
    shift
fi
remote_port="${REMOTE_PORT:-9999}"
local_port="${LOCAL_PORT:-$remote_port}"

if [[ "$destination" == @* ]]; then
    echo "error: no user name: give USER@HOST or set LOGIN_USER to your JuDoor user name" >&2
    exit 2
fi
for name in remote_port local_port; do
    value="${!name}"
    if ! [[ "$value" =~ ^[0-9]+$ ]] || (( value < 1024 || value > 65535 )); then
        echo "error: ${name^^}='$value' is not a port number from 1024 to 65535" >&2
        exit 2
    fi
done

echo "Tunnel localhost:$local_port -> $destination:$remote_port; open http://localhost:$local_port (Ctrl+C stops it)"
# --- your work ---
# TODO: exec ssh with no remote command (-N), forwarding "$local_port" on this laptop to
# localhost:"$remote_port" as the login node sees it (-L), passing on "$@", to "$destination".
# Then delete the echo line.
echo "TODO: tunnel.sh: write the ssh -L command between the 'your work' lines" >&2; exit 3
# --- end of your work ---
