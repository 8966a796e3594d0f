"""The local test cluster looks like JURECA-DC to the course's batch scripts, runs them unchanged, and is as strict:
two nodes, cores bound to what a step asks for, GPUs only on request, accounting, jobs from course users only."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import slurm
from harness.localcluster import ACCOUNT, PARTITION, RESERVATION, LocalCluster, clean_env
from harness.users import course_users, current_user

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parent.parent


def scontrol(*args: str) -> dict[str, str]:
    records = slurm.show(*args)
    assert records, f"scontrol show {' '.join(args)}: Slurm does not know it"
    return records[0]


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
    assert local_slurm.nodes == ["dc01", "dc02"]
    for node in local_slurm.nodes:
        assert scontrol("node", node)["Gres"] == "gpu:4"
    reservation = scontrol("reservation", RESERVATION)
    assert reservation["State"] == "ACTIVE" and reservation["Nodes"] == "dc[01-02]"
    users = reservation["Users"].split(",")
    assert current_user() in users and "root" not in users, users
    members = slurm.account_users(ACCOUNT)
    assert set(course_users()) <= set(members) and "root" not in members, members


def test_a_step_gets_the_jobs_cores_only_when_they_are_passed_on(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """Slurm 22.05: srun no longer takes --cpus-per-task from the job; the cores are bound, so it shows."""
    script = write_job(tmp_path, 'srun nproc\nexport SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"\nsrun nproc\n')
    record = local_slurm.run("--cpus-per-task=2", "--output=out.%j", script, cwd=tmp_path)
    assert record["JobState"] == "COMPLETED", record
    assert read(tmp_path / f"out.{record['JobId']}").split() == ["1", "2"]


def test_a_two_node_job_spans_both_nodes_by_their_infiniband_names(local_slurm: LocalCluster, tmp_path: Path) -> None:
    script = write_job(tmp_path, 'first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
                                 'getent hosts "${first}i" | cut -d" " -f1\n'
                                 'srun bash -c \'echo "$SLURMD_NODENAME $CUDA_VISIBLE_DEVICES"\' | sort\n')
    record = local_slurm.run("--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1", "--gres=gpu:4",
                             "--output=out.%j", script, cwd=tmp_path)
    assert record["JobState"] == "COMPLETED", record
    assert read(tmp_path / f"out.{record['JobId']}").splitlines() == ["127.0.0.1", "dc01 0,1,2,3", "dc02 0,1,2,3"]


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
module load GCC OpenMPI PyTorch torchvision
module list 2>&1
python -c 'import sys, torch; print("python=" + sys.executable); print("torch=" + torch.__file__)'
""")
    record = local_slurm.run("--output=out.%j", "--error=err.%j", script, cwd=tmp_path)
    output = read(tmp_path / f"out.{record['JobId']}")
    assert record["JobState"] == "COMPLETED", read(tmp_path / f"err.{record['JobId']}")
    assert "PyTorch/" in output and "torchvision/" in output and "Stages/2024" in output
    torch_file = next(line for line in output.splitlines() if line.startswith("torch=")).removeprefix("torch=")
    assert Path(torch_file).resolve().is_relative_to((ROOT / ".venv").resolve())


def test_course_matrix_script_runs_unchanged(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """slurm/jureca-matrix.sbatch as the book shows it; only the command line adapts it to this machine."""
    shutil.copy(ROOT / "solutions" / "matrix_gpu.py", tmp_path)
    record = local_slurm.run(f"--chdir={tmp_path}", "--time=00:05:00", ROOT / "slurm" / "jureca-matrix.sbatch",
                             env={**clean_env(), "SIZE": "256"})
    job_id = record["JobId"]
    error = (tmp_path / f"error.{job_id}").read_text() if (tmp_path / f"error.{job_id}").exists() else ""
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", error
    assert record["JobName"] == "matrix-multiplication"
    assert record["Reservation"] == RESERVATION and record["Partition"] == PARTITION and record["Account"] == ACCOUNT
    output = read(tmp_path / f"output.{job_id}")
    assert "device: cpu" in output  # the stand-in GPUs are /dev/null: torch rightly finds no CUDA device
    assert "check: passed" in output


@pytest.mark.root
def test_root_gets_no_job_on_the_course_account(tmp_path: Path) -> None:
    """On JURECA nobody submits as root; here root is no member of the course account, so sbatch refuses."""
    script = write_job(tmp_path, "true\n")
    done = slurm.run_sbatch([f"--account={ACCOUNT}", f"--reservation={RESERVATION}", "--output=/dev/null", script])
    assert done.returncode != 0
    assert "Invalid account or account/partition combination specified" in done.stderr
