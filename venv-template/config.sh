# The modules this virtual environment is built on, loaded in this order by setup.sh and activate.sh.
# One `module load` per line. The venv only adds packages on top of them, so change the modules here,
# then run setup.sh again (delete venv/ first if the Python version changes).
# torchvision is a module of its own at JSC, built against the PyTorch module: load it, so that pip finds it
# installed and never fetches a PyPI torchvision (which would bring a second torch along).
COURSE_MODULES=(
    "Stages/2024"
    "GCC OpenMPI PyTorch torchvision"
)
# Packages the modules provide and pip must never replace (see setup.sh). NumPy too: the stage's PyTorch (2.1.2 in
# Stages/2024) was built against NumPy 1.x, and without this pip picks a pandas (for fastai) that needs NumPy 2;
# the module's NumPy 1 comes first on the path, so `import pandas`, and with it fastai, fails.
COURSE_KEEP_FROM_MODULES=(torch torchvision torchaudio numpy)
