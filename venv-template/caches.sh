# Where the programs' caches go: under $SCRATCH, not in $HOME. Sourced by setup.sh and activate.sh.
# At JSC, $HOME holds at most 10,000 files, and one data set (the Pets: 7,390 pictures plus their annotations) has
# more; $SCRATCH is made for data (see the book, "Where your files go"). A cache that is set already (by you, or by
# a test harness for its job) is kept. Where no project is active, the caches stay where the programs put them.

course_caches() {
    if [[ -z ${SCRATCH:-} ]]; then
        if declare -F jutil >/dev/null || command -v jutil >/dev/null; then
            echo "venv-template: \$SCRATCH is not set, so the caches would fill \$HOME: run" \
                 " jutil env activate -p <project>  (the course's: training2441), then source activate.sh again" >&2
        fi
        return 0
    fi
    local base=$SCRATCH/${USER:-$(id -un)}/cache
    export FASTAI_HOME=${FASTAI_HOME:-$base/fastai}       # fastai's data sets (untar_data)
    export TORCH_HOME=${TORCH_HOME:-$base/torch}          # torchvision's weights (torch.hub)
    export HF_HOME=${HF_HOME:-$base/huggingface}          # Hugging Face's data sets and models
    export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$base/pip}      # pip's downloads
}
