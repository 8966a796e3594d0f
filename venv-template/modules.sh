# Loads the modules listed in config.sh. Sourced by setup.sh and activate.sh; not meant to be run alone.
# Works in bash; returns 1 with one line on stderr when something is missing.

course_load_modules() {
    local here line
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    # A batch job's shell may not have Lmod's `module` function yet: look for Lmod's own set-up file.
    if ! declare -F module >/dev/null; then
        local init
        for init in "${LMOD_PKG:+$LMOD_PKG/init/bash}" "${MODULESHOME:+$MODULESHOME/init/bash}" \
                    /usr/share/lmod/lmod/init/bash /usr/share/lmod/lmod/init/profile; do
            if [[ -n $init && -f $init ]]; then source "$init" >/dev/null; break; fi
        done
    fi
    if ! declare -F module >/dev/null; then
        echo "venv-template: the 'module' command is missing: use a system with Lmod (a JSC login or compute node)" >&2
        return 1
    fi
    # shellcheck source=config.sh
    source "$here/config.sh"
    for line in "${COURSE_MODULES[@]}"; do
        # shellcheck disable=SC2086  # one line may name several modules
        module load $line || { echo "venv-template: 'module load $line' failed" >&2; return 1; }
    done
}
