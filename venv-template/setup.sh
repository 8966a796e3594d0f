#!/usr/bin/env bash
# Create the course's virtual environment in venv/ next to this script, on top of the modules in config.sh,
# and install requirements.txt into it. Run it, do not source it:   bash venv-template/setup.sh
# Running it again is safe: an existing venv/ is kept and pip only adds what is still missing.
#
# Why the venv must not get its own torch: the PyTorch module's torch was built for this machine's GPUs,
# CUDA version and network libraries (NCCL over InfiniBand). `python3 -m venv --system-site-packages` lets
# the venv see the module's packages; if pip then installed torch into the venv (because some package
# asked for another version), that generic copy would come first on the path, shadow the module's, and
# run slower or not at all on the GPUs. So pip is told to keep the module's versions (a constraints file),
# and the script checks afterwards that `import torch` still finds the module's copy.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=$HERE/venv
die() { echo "setup.sh: error: $*" >&2; exit 1; }

# shellcheck source=modules.sh
source "$HERE/modules.sh"
# shellcheck source=caches.sh
source "$HERE/caches.sh"
course_caches   # pip's cache (thousands of files) goes under $SCRATCH, not into the home
set +u  # Lmod's shell functions read variables that may be unset
course_load_modules || exit 1
set -u
command -v python3 >/dev/null || die "no python3 after loading the modules in $HERE/config.sh"

if [[ ! -x $VENV/bin/python ]]; then
    echo "setup.sh: creating $VENV with $(command -v python3) ($(python3 -V 2>&1))"
    python3 -m venv --system-site-packages "$VENV" || die "python3 -m venv failed"
else
    echo "setup.sh: keeping existing $VENV"
fi

# The module's versions of the packages in COURSE_KEEP_FROM_MODULES, as pip constraints ("torch==2.1.2").
CONSTRAINTS=$VENV/module-constraints.txt
"$VENV/bin/python" - "${COURSE_KEEP_FROM_MODULES[@]}" >"$CONSTRAINTS" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for name in sys.argv[1:]:
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        pass
# Releases whose metadata accept the stage's versions but that do not import on them (found by
# tests/stage_2024.sh on PyTorch 2.1.2 and NumPy 1.26, the versions of Stages/2024): pip would pick them.
# fastai 2.8.5 and later import torch.amp.GradScaler (torch 2.3 and later) yet accept any torch below 3;
# pyarrow 26 stops at import with "pyarrow requires NumPy 2.0 or newer" yet declares no NumPy requirement.
def older(name: str, than: tuple[int, int]) -> bool:
    try:
        return tuple(int(part) for part in version(name).split("+")[0].split(".")[:2]) < than
    except (PackageNotFoundError, ValueError):
        return False

if older("torch", (2, 3)):
    print("fastai<2.8.5")
if older("numpy", (2, 0)):
    print("pyarrow<26")
PY
grep -q '^torch==' "$CONSTRAINTS" || die "the modules in config.sh provide no torch: is PyTorch among them?"

# Packages the modules already provide count as installed, so pip adds only what is really missing
# (and needs no network when nothing is).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --constraint "$CONSTRAINTS" --requirement "$HERE/requirements.txt" \
    || die "pip install failed (a requirement that needs another torch or NumPy than the module's is refused on purpose)"

# The promise of this template: torch comes from the module, not from a copy inside the venv.
torch_file=$("$VENV/bin/python" -c 'import torch; print(torch.__file__)') || die "torch does not import in the venv"
case $torch_file in
    "$VENV"/*) die "torch in the venv ($torch_file) shadows the module's: delete $VENV and run setup.sh again" ;;
esac
echo "setup.sh: ready; torch from the module: $torch_file"
echo "setup.sh: use it with:  source $HERE/activate.sh"
