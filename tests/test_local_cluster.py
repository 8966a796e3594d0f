"""The local test cluster looks like JURECA-DC to the course's batch scripts, runs them unchanged, and is as strict:
two nodes, cores bound to what a step asks for, GPUs only on request, accounting, jobs from course users only."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import slurm
from harness.localcluster import ACCOUNT, PARTITION, RESERVATION, LocalCluster, submit_env
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
    assert "gpus=0,1,2,3     " in read(tmp_path / f"out.{record['JobId']}")  # psslurm's five spaces


# --- GPUs as JURECA-DC's psslurm hands them out (slurm/local-cluster/task-prolog.sh.in, README.md) --------------------
# Each test runs one job of two nodes with two one-core tasks each (a local node has two cores). A line per task:
# `<label> <node> <local id> [<CUDA_VISIBLE_DEVICES>]`, sorted; [unset] when the variable is not set at all.

SHOW = 'echo "{label} $SLURMD_NODENAME $SLURM_LOCALID [${{CUDA_VISIBLE_DEVICES-unset}}]"'


def step(label: str, *options: str) -> str:
    return f"srun --cpus-per-task=1 {' '.join(options)} bash -c '{SHOW.format(label=label)}' | sort\n"


def gpu_job(cluster: LocalCluster, folder: Path, body: str, *options: str) -> list[str]:
    folder.mkdir(exist_ok=True)
    script = write_job(folder, 'echo "batch [${CUDA_VISIBLE_DEVICES-unset}] '
                               'auto [${__AUTO_CUDA_VISIBLE_DEVICES-unset}] on-node $SLURM_GPUS_ON_NODE"\n' + body)
    record = cluster.run("--nodes=2", "--ntasks-per-node=2", "--cpus-per-task=1", *options, "--output=out.%j",
                         "--error=err.%j", script, cwd=folder)
    assert record["JobState"] == "COMPLETED", read(folder / f"err.{record['JobId']}")
    return read(folder / f"out.{record['JobId']}").splitlines()


def test_psslurm_gives_each_of_several_tasks_on_a_node_one_gpu_and_a_lone_task_all(local_slurm: LocalCluster,
                                                                                   tmp_path: Path) -> None:
    """psslurmpin.c getRankGpuPinning (gpus_per_task 1, closest: here task i gets the i-th GPU) and psslurmenv.c
    setGPUEnv (one task on a node: all the step's GPUs there); the batch script gets the list plus five spaces."""
    lines = gpu_job(local_slurm, tmp_path, step("two") + step("one", "--ntasks=2", "--ntasks-per-node=1"),
                    "--gres=gpu:4")
    assert lines == ["batch [0,1,2,3     ] auto [0,1,2,3     ] on-node 4",
                     "two dc01 0 [0]", "two dc01 1 [1]", "two dc02 0 [0]", "two dc02 1 [1]",
                     "one dc01 0 [0,1,2,3]", "one dc02 0 [0,1,2,3]"], lines


def test_psslurm_keeps_the_gpu_list_a_script_exported_for_every_task(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """psidpin.c PSIDpin_checkAutoVar: the export differs from __AUTO_CUDA_VISIBLE_DEVICES (no trailing spaces), so
    the user changed it and every task keeps it, as JSC's course script code/dataloading/run_loader.sh relies on."""
    lines = gpu_job(local_slurm, tmp_path, "export CUDA_VISIBLE_DEVICES=0,1,2,3\n" + step("exported"), "--gres=gpu:4")
    assert lines[1:] == ["exported dc01 0 [0,1,2,3]", "exported dc01 1 [0,1,2,3]", "exported dc02 0 [0,1,2,3]",
                         "exported dc02 1 [0,1,2,3]"], lines


def test_gpus_on_node_is_the_nodes_count_whatever_gres_asked(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """psslurmenv.c setJobEnv: SLURM_GPUS_ON_NODE is the node's GPU count. --gres=gpu:1: both tasks of a node share
    the one GPU (0); no --gres: no GPU variable at all, but still SLURM_GPUS_ON_NODE=4."""
    lines = gpu_job(local_slurm, tmp_path / "one", step("one-gpu"), "--gres=gpu:1")
    assert lines == ["batch [0     ] auto [0     ] on-node 4", "one-gpu dc01 0 [0]", "one-gpu dc01 1 [0]",
                     "one-gpu dc02 0 [0]", "one-gpu dc02 1 [0]"], lines
    lines = gpu_job(local_slurm, tmp_path / "none", step("no-gres"))
    assert lines == ["batch [unset] auto [unset] on-node 4", "no-gres dc01 0 [unset]", "no-gres dc01 1 [unset]",
                     "no-gres dc02 0 [unset]", "no-gres dc02 1 [unset]"], lines


def test_request_beyond_the_node_is_refused(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """JURECA's --cpus-per-task=128 cannot fit this machine: sbatch says so at once, nothing waits forever."""
    script = write_job(tmp_path, "true\n")
    done = local_slurm.sbatch("--cpus-per-task=128", script, cwd=tmp_path)
    assert done.returncode != 0
    assert "More processors requested than permitted" in done.stderr


def test_module_load_in_a_batch_job_gives_the_project_torch(local_slurm: LocalCluster, tmp_path: Path) -> None:
    """The submitting shell has no Lmod (submit_env); `module` must come from the cluster's task prolog."""
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


@pytest.mark.root
def test_root_gets_no_job_on_the_course_account(tmp_path: Path) -> None:
    """On JURECA nobody submits as root; here root is no member of the course account, so sbatch refuses."""
    script = write_job(tmp_path, "true\n")
    done = slurm.run_sbatch([f"--account={ACCOUNT}", f"--reservation={RESERVATION}", "--output=/dev/null", script])
    assert done.returncode != 0
    assert "Invalid account or account/partition combination specified" in done.stderr
