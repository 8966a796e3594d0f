"""The course's venv template: built offline on top of the PyTorch module, usable in a batch job, and its
torch is the module's (a copy inside the venv would shadow the build made for the machine)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.localcluster import LocalCluster, submit_env
from harness.report import report_env
from harness.requires import require

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "venv-template"


def output_of(folder: Path, job_id: str, names: tuple[str, str] = ("out", "err")) -> str:
    """A job's output and error files in `folder` (`<name>.<job id>`), together."""
    return "\n".join(p.read_text() for p in (folder / f"{name}.{job_id}" for name in names) if p.exists())


def run_bash_job(cluster: LocalCluster, folder: Path, name: str, body: str, *options: str,
                 **run: object) -> tuple[dict[str, str], str]:
    """`body` as the batch script `folder/name` (bash, `set -euo pipefail`), run from `folder` on the local cluster:
    the finished job's record and its output."""
    script = folder / name
    script.write_text(f"#!/bin/bash\nset -euo pipefail\n{body}")
    record = cluster.run("--output=out.%j", "--error=err.%j", *options, script, cwd=folder, **run)
    return record, output_of(folder, record["JobId"])


@pytest.fixture(scope="module")
def built_venv(local_slurm_available: None, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the template whose setup.sh ran twice in a batch job with no network: its Python (pip) refuses
    the internet (harness/offline.py's guard, as on a compute node), whoever runs the tests."""
    folder = tmp_path_factory.mktemp("venv-job")
    copy = folder / "venv-template"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("venv"))
    cluster = LocalCluster()
    try:
        record, output = run_bash_job(cluster, folder, "setup.job", f"""bash {copy}/setup.sh
echo "--- second run ---"
bash {copy}/setup.sh
""", "--time=00:10:00", env=report_env(None, offline=True, base=submit_env()), timeout_s=600)
        yield copy, record, output
    finally:
        cluster.cancel_all()


@pytest.mark.slurm
def test_setup_builds_on_the_module_offline(built_venv) -> None:
    copy, record, output = built_venv
    assert record["JobState"] == "COMPLETED", output
    config = (copy / "venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in config
    # Everything in requirements.txt came from the module: pip put no torch (and no fastai) into the venv.
    site = next((copy / "venv" / "lib").glob("python3*/site-packages"))
    assert not (site / "torch").exists() and not (site / "fastai").exists()
    assert "setup.sh: keeping existing" in output.split("--- second run ---")[1]  # idempotent


@pytest.mark.slurm
def test_activate_in_a_batch_job(built_venv, local_slurm: LocalCluster, tmp_path: Path) -> None:
    copy, _, _ = built_venv
    record, output = run_bash_job(local_slurm, tmp_path, "use.job", f"""source {copy}/activate.sh
srun python -c 'import sys, torch, fastai; print("prefix=" + sys.prefix); print("torch=" + torch.__file__)'
""")
    assert record["JobState"] == "COMPLETED", output
    values = dict(line.split("=", 1) for line in output.splitlines() if line.startswith(("prefix=", "torch=")))
    assert Path(values["prefix"]) == copy / "venv"  # the venv is active ...
    torch_file = Path(values["torch"]).resolve()
    assert torch_file.is_relative_to((ROOT / ".venv").resolve())  # ... and torch is the module's,
    assert not torch_file.is_relative_to(copy / "venv")  # not a copy inside the venv


def test_executing_activate_says_to_source_it() -> None:
    done = subprocess.run(["bash", str(TEMPLATE / "activate.sh")], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "must be sourced" in lines[0] and "source " in lines[0]


@pytest.mark.slurm
def test_fastai_script_activates_the_venv(built_venv, local_slurm: LocalCluster, tmp_path: Path) -> None:
    """slurm/fastai.sbatch finds the venv through COURSE_VENV, and the submitting shell's knobs reach cats.py.

    A stand-in cats.py reports what it sees; the real training is the `--cluster` run's job."""
    copy, _, _ = built_venv
    (tmp_path / "cats.py").write_text(
        "import sys, fastai, torch\n"
        "print('prefix=' + sys.prefix)\n"
        "print('fastai=' + fastai.__version__)\n"
        "import os; print('epochs=' + os.environ.get('EPOCHS', 'unset'))\n")
    record = local_slurm.run("--cpus-per-task=1", f"--chdir={tmp_path}",
                             ROOT / "slurm" / "fastai.sbatch", env=submit_env(COURSE_VENV=str(copy), EPOCHS="1"))
    output = output_of(tmp_path, record["JobId"], ("output", "error"))  # the names fastai.sbatch gives them
    assert record["JobState"] == "COMPLETED" and record["JobName"] == "cat-classifier", output
    assert f"prefix={copy / 'venv'}" in output
    assert "epochs=1" in output


# --- JURECA's software stage (Stages/2024) as far as PyPI has it ---------------------------------------------------

STAGE = ROOT / ".venv-stage2024"  # PyTorch 2.1.2, torchvision 0.16.2, NumPy 1.26.4: COURSE_STAGE_2024=1 ./setup.sh
STAGE_MODULE = "Stages/2024/MPI/GCC/12.3.0/OpenMPI/4.1.5/PyTorch/2.1.2.lua"


@pytest.mark.parametrize("template", ["course", "without-numpy-kept"])
def test_the_course_venv_runs_every_day_on_the_stage_versions(template: str, tmp_path: Path) -> None:
    """tests/stage_2024.sh: the venv template on `module load PyTorch/2.1.2 torchvision/0.16.2`, then matrix.py,
    cats.py, pack.py, time_loaders.py, train_ddp.py (torchrun, two processes) and day 3's programs. The template as it was, keeping
    only torch, torchvision and torchaudio from the modules, lets pip pick pandas 3.1, which needs NumPy 2, and put
    NumPy 2 into the venv; the module's NumPy 1.26 (the one torch 2.1.2 was built against) still comes first on the
    path (PYTHONPATH), so fastai's `import pandas` fails and cats.py never starts."""
    from harness.users import STATE

    modules = Path(STATE) / "modulefiles" / STAGE_MODULE
    require((STAGE / "complete").is_file(), "the stage tree .venv-stage2024 is missing: run COURSE_STAGE_2024=1 "
            "./setup.sh (about 5 GB), then slurm/local-cluster/start.sh")
    require(modules.is_file(), f"the local cluster's module tree has no {modules.name} (PyTorch 2.1.2): run "
            "slurm/local-cluster/start.sh after building the stage tree")
    done = subprocess.run(["bash", str(ROOT / "tests" / "stage_2024.sh"), str(tmp_path), template],
                          capture_output=True, text=True, timeout=1200, env=submit_env())
    output = done.stdout + done.stderr
    print(output[-3000:])
    if template == "course":
        assert done.returncode == 0 and "STAGE OK" in done.stdout, output[-3000:]
        assert "STACK torch=2.1.2" in done.stdout and "torchvision=0.16.2" in done.stdout, output[-3000:]
        assert "numpy=1.26.4" in done.stdout, output[-3000:]
    else:
        assert done.returncode != 0 and "STAGE OK" not in done.stdout, output[-3000:]
        failed = output.split("DAY1 cats", 1)[-1]
        assert "DAY1 cats" in output and "Please upgrade numpy to >= 2" in failed, output[-3000:]
