# Load the course's modules and activate its virtual environment in the current shell.
# Source it (in a terminal or a batch script):   source venv-template/activate.sh
# Executing it (bash activate.sh) would change only a short-lived child shell, so that is refused.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "activate.sh must be sourced, not executed: run  source $0" >&2
    exit 1
fi

__course_activate() {
    local here nounset=0
    # Lmod and the venv's own activate read variables that may be unset: relax `set -u` while they run.
    case $- in *u*) nounset=1; set +u ;; esac
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    local status=0
    # shellcheck source=modules.sh
    source "$here/modules.sh"
    # shellcheck source=caches.sh
    source "$here/caches.sh"
    course_caches
    if ! course_load_modules; then
        status=1
    elif [[ ! -f $here/venv/bin/activate ]]; then
        echo "activate.sh: no virtual environment in $here/venv: run  bash $here/setup.sh  first" >&2
        status=1
    else
        # shellcheck source=/dev/null
        source "$here/venv/bin/activate"
    fi
    ((nounset)) && set -u
    return "$status"
}

__course_activate || { unset -f __course_activate; return 1; }
unset -f __course_activate
