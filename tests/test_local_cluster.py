"""The local test cluster looks like JURECA-DC to the course's batch scripts, and runs them unchanged."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.localcluster import PARTITION, RESERVATION, LocalCluster, fields

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parent.parent


def scontrol(*args: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", *args, "-o"], capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 0, f"scontrol show {' '.join(args)}: {out.stderr.strip()}"
    return fields(out.stdout)


def write_job(folder: Path, body: str) -> Path:
    script = folder / "job.sh"
    script.write_text("#!/bin/bash\n" + body)
    return script


def read(path: Path) -> str:
    assert path.exists(), f"{path.name} was not written"
    return path.read_text()


def test_shaped_like_jureca_dc(local_slurm: LocalCluster) -> None:
    partition = scontrol("partition", PARTITION)
    assert partition["Default"] == "YES" and partition["State"] == "UP"
    node = scontrol("node", local_slurm.node)
    assert node["Gres"] == "gpu:4"
    reservation = scontrol("reservation", RESERVATION)
    assert reservation["State"] == "ACTIVE"
    assert reservation["Nodes"] == local_slurm.node
    assert "root" in reservation["Users"].split(",")


def test_job_sees_four_gpus(local_slurm: LocalCluster, tmp_path: Path) -> None:
    script = write_job(tmp_path, 'echo "gpus=$CUDA_VISIBLE_DEVICES"\n')
    record = local_slurm.run("--gres=gpu:4", f"--reservation={RESERVATION}", "--output=out.%j", script, cwd=tmp_path)
    assert record["JobState"] == "COMPLETED", record
    assert "gpus=0,1,2,3" in read(tmp_path / f"out.{record['JobId']}")


def test_request_beyond_the_node_is_refused(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """JURECA's --cpus-per-task=128 cannot fit this machine: sbatch says so at once, nothing waits forever."""
    script = write_job(tmp_path, "true\n")
    done = local_slurm.sbatch("--cpus-per-task=128", script, cwd=tmp_path)
    assert done.returncode != 0
    assert "More processors requested than permitted" in done.stderr


def test_module_load_in_a_batch_job_gives_the_project_torch(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """The submitting shell has no Lmod (clean_env); `module` must come from the cluster's task prolog."""
    script = write_job(tmp_path, """set -euo pipefail
module load Stages/2024
module load GCC OpenMPI PyTorch
module list 2>&1
python -c 'import sys, torch; print("python=" + sys.executable); print("torch=" + torch.__file__)'
""")
    record = local_slurm.run("--output=out.%j", "--error=err.%j", script, cwd=tmp_path)
    output = read(tmp_path / f"out.{record['JobId']}")
    assert record["JobState"] == "COMPLETED", read(tmp_path / f"err.{record['JobId']}")
    assert "PyTorch/" in output and "Stages/2024" in output
    torch_file = next(line for line in output.splitlines() if line.startswith("torch=")).removeprefix("torch=")
    assert Path(torch_file).resolve().is_relative_to((ROOT / ".venv").resolve())


def test_course_matrix_script_runs_unchanged(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """slurm/jureca-matrix.sbatch as the book shows it; only the command line adapts it to this machine."""
    shutil.copy(ROOT / "solutions" / "matrix_gpu.py", tmp_path)
    # One core: the shared 2-core test machine keeps the other for jobs of parallel tests.
    record = local_slurm.run("--cpus-per-task=1", f"--chdir={tmp_path}", "--time=00:05:00",
                             ROOT / "slurm" / "jureca-matrix.sbatch", "--size", "256", "--repeats", "2")
    job_id = record["JobId"]
    error = (tmp_path / f"error.{job_id}").read_text() if (tmp_path / f"error.{job_id}").exists() else ""
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", error
    assert record["JobName"] == "matrix-multiplication"
    assert record["Reservation"] == RESERVATION and record["Partition"] == PARTITION
    output = read(tmp_path / f"output.{job_id}")
    assert "device: cpu" in output  # the stand-in GPUs are /dev/null: torch rightly finds no CUDA device
    assert "check: passed" in output
