# The modules this virtual environment is built on, loaded in this order by setup.sh and activate.sh.
# One `module load` per line. The venv only adds packages on top of them, so change the modules here,
# then run setup.sh again (delete venv/ first if the Python version changes).
COURSE_MODULES=(
    "Stages/2024"
    "GCC OpenMPI PyTorch"
)
# Packages the modules provide and pip must never replace (see setup.sh).
COURSE_KEEP_FROM_MODULES=(torch torchvision torchaudio)
