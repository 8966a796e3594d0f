#!/usr/bin/env bash
# The course on JURECA's software stage as far as PyPI has it (tests/test_venv_template.py runs this):
#   bash tests/stage_2024.sh WORKDIR [without-numpy-kept]
# A copy of venv-template/ in WORKDIR built on the local module tree's PyTorch/2.1.2 and torchvision/0.16.2 (the
# stage tree .venv-stage2024: NumPy 1.26), then the solutions of day 1 (matrix.py, cats.py on the Mini-Pets stand-ins)
# day 2 (pack.py, time_loaders.py, train_ddp.py under torchrun) and day 3 (train_ckpt.py, started twice;
# profile_train.py's traces) run with it. Needs the package index (the venv
# installs fastai and the rest on top of the modules, as at JSC) and the cluster's module tree (start.sh).
set -euo pipefail
WORK=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MODULEPATH=${COURSE_SLURM_STATE:-/tmp/course-slurm}/modulefiles/Core
export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore

cp -r "$ROOT/venv-template" "$WORK/venv-template"
rm -rf "$WORK/venv-template/venv"
sed -i 's|^    "GCC OpenMPI PyTorch torchvision"$|    "GCC OpenMPI PyTorch/2.1.2 torchvision/0.16.2"|' "$WORK/venv-template/config.sh"
grep -q 'PyTorch/2.1.2' "$WORK/venv-template/config.sh" || { echo "stage_2024.sh: config.sh changed: update the sed" >&2; exit 1; }
if [[ ${2:-} == without-numpy-kept ]]; then  # the broken copy: the template as it was before NumPy was kept
    sed -i 's|^COURSE_KEEP_FROM_MODULES=(torch torchvision torchaudio numpy)$|COURSE_KEEP_FROM_MODULES=(torch torchvision torchaudio)|' \
        "$WORK/venv-template/config.sh"
    grep -q '^COURSE_KEEP_FROM_MODULES=(torch torchvision torchaudio)$' "$WORK/venv-template/config.sh" \
        || { echo "stage_2024.sh: COURSE_KEEP_FROM_MODULES changed: update the sed" >&2; exit 1; }
fi
bash "$WORK/venv-template/setup.sh"
# The stand-in pictures and weights, drawn by the harness's own Python before the stage's is activated
(cd "$ROOT" && .venv/bin/python -m harness.minipets --fastai-home "$WORK/fastai" --torch-home "$WORK/torch" \
    --per-breed 4 >/dev/null)
set +u
source "$WORK/venv-template/activate.sh"
set -u
python - "$WORK/venv-template/venv" <<'PY'
import sys
import numpy, torch, torchvision
print(f"STACK torch={torch.__version__} torchvision={torchvision.__version__} numpy={numpy.__version__}")
print(f"FROM torch={torch.__file__} numpy={numpy.__file__}")
for module in (torch, torchvision, numpy):
    if module.__file__.startswith(sys.argv[1]):
        sys.exit(f"STACK BROKEN: the venv holds its own {module.__name__} {module.__version__}, in front of the module's")
assert int(torch.from_numpy(numpy.arange(4)).sum()) == 6  # fails where NumPy 2 shadows the NumPy torch was built for
PY

mkdir -p "$WORK/run" && cd "$WORK/run"
cp "$ROOT"/solutions/{matrix.py,cats.py,datasets.py,pack.py,time_loaders.py,train.py,train_ddp.py,train_ckpt.py,profile_train.py} .
export FASTAI_HOME=$WORK/fastai TORCH_HOME=$WORK/torch
echo "DAY1 matrix"; python matrix.py
echo "DAY1 cats"; EPOCHS=1 SIZE=32 python cats.py
echo "DAY2 pack"; python pack.py "$FASTAI_HOME/data/oxford-iiit-pet/images" packed
echo "DAY2 time_loaders"; python time_loaders.py packed --images "$FASTAI_HOME/data/oxford-iiit-pet/images"
echo "DAY2 train_ddp"; DATA=packed/pets.h5 EPOCHS=1 BATCH=8 WORKERS=0 \
    python -m torchrun_jsc --standalone --nproc_per_node=2 train_ddp.py
ls model.pt train_log.csv
echo "DAY3 train_ckpt"; for start in first resumed; do  # the second start loads the first one's checkpoint
    DATA=packed/pets.h5 EPOCHS=1 BATCH=8 WORKERS=0 python -m torchrun_jsc --standalone --nproc_per_node=2 train_ckpt.py
done
ls checkpoint.pt
echo "DAY3 profile_train"; for loader in jpeg preloaded; do
    PETS_IMAGES="$FASTAI_HOME/data/oxford-iiit-pet/images" LOADER=$loader python profile_train.py
done
ls traces/jpeg-fp32.json traces/preloaded-fp32.json
echo "STAGE OK"
