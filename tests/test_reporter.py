"""The reporter and network guard (harness/jobsite/sitecustomize.py) in real Python processes, as a job's programs
meet them: what they record, what the guard refuses and lets through, and that the system's own sitecustomize
still runs after it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from harness.report import read_files, read_reports, report_env, unseen_gpu_problems


def run(code: str, tmp_path: Path, *, offline: bool = False, detail: str = "", **extra: str):
    """`code` in a fresh Python with the reporter on; its output and its one report."""
    env = report_env(tmp_path / "reports", offline=offline, detail=detail, base={**os.environ, **extra})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    reports = read_reports(tmp_path / "reports")
    assert len(reports) == 1, done.stderr
    return done, reports[0]


def test_a_process_reports_its_cores_gpus_exception_and_written_files(tmp_path: Path) -> None:
    done, report = run("""
        open("result.txt", "w").write("x")
        open("input.txt", "w").close(); open("input.txt").read()
        raise SystemExit(3) if False else RuntimeError("the program's own error")
    """, tmp_path, CUDA_VISIBLE_DEVICES="0,1,2,3", SLURM_PROCID="5")
    assert done.returncode == 1 and "the program's own error" in done.stderr  # the program's behaviour is kept
    assert report.cores == len(os.sched_getaffinity(0))
    assert report.gpus_allocated == 4 and report.slurm["procid"] == "5"
    assert report.exception == "RuntimeError: the program's own error"
    assert report.written == [str(tmp_path / "result.txt"), str(tmp_path / "input.txt")]


def test_no_gpu_given_is_zero_gpus(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    done = subprocess.run([sys.executable, "-c", "pass"], env=report_env(tmp_path / "r", base=env), timeout=60)
    assert done.returncode == 0 and read_reports(tmp_path / "r")[0].gpus_allocated == 0


def test_the_guard_refuses_the_internet_like_a_node_without_it_and_keeps_loopback(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
    done, report = run(f"""
        import socket, urllib.request
        socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
        print("loopback: connected")
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=5)
        except OSError as error:
            print("address:", error.errno)
        try:
            urllib.request.urlopen("https://files.fast.ai/data/examples/oxford-iiit-pet.tgz", timeout=5)
        except Exception as error:
            print("download:", error)
    """, tmp_path, offline=True)
    server.close()
    assert done.stdout.splitlines() == [
        "loopback: connected", "address: 101",
        "download: <urlopen error [Errno -3] Temporary failure in name resolution>"], done.stdout + done.stderr
    assert report.network == ["connect 192.0.2.1:80", "lookup files.fast.ai"]


def test_without_the_guard_the_internet_is_recorded_not_refused(tmp_path: Path) -> None:
    """On a real compute node the network is simply absent; the reporter only notes who tried, and a lookup of an
    address inside the cluster (not on the internet) is no attempt."""
    done, report = run("""
        import socket
        for host in ("10.1.2.3", "192.0.2.1"):
            s = socket.socket(); s.setblocking(False)
            try:
                s.connect_ex((host, 9))
            finally:
                s.close()
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert report.network == [], "neither address is on the internet (private, documentation)"


def test_loader_passes_and_files_read_by_forked_workers(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    done, report = run("""
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Files(Dataset):
            names = ["a.jpg", "b.jpg", "c.txt"]
            def __len__(self): return 3
            def __getitem__(self, i): return len(open(self.names[i], "rb").read())

        loader = DataLoader(Files(), batch_size=2, num_workers=1, multiprocessing_context="fork")
        for epoch in range(2):
            list(loader)
    """, tmp_path, detail="dataloaders,reads=*.jpg")
    assert done.returncode == 0, done.stderr
    assert report.probed["loader_passes"] == [[0, 1, 2], [0, 1, 2]]
    read = read_files(tmp_path / "reports")
    assert list(read) == ["0"] and sorted(read["0"]) == [str(tmp_path / "a.jpg")] * 2 + [str(tmp_path / "b.jpg")] * 2


def test_the_system_sitecustomize_still_runs_after_the_reporter(tmp_path: Path) -> None:
    other = tmp_path / "system"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['SYSTEM_SITECUSTOMIZE'] = 'ran'\n")
    env = report_env(tmp_path / "reports", base={**os.environ, "PYTHONPATH": str(other)})
    assert env["PYTHONPATH"].split(os.pathsep)[1] == str(other)  # the reporter first, the system's after it
    done = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('SYSTEM_SITECUSTOMIZE'))"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ran" and read_reports(tmp_path / "reports"), done.stderr


# --- the CUDA stand-in (COURSE_CUDA_STANDIN=1): the test cluster's GPUs follow CUDA's ordinal rule --------------------

STANDIN_PROGRAM = """
    import os, torch, torch.distributed as dist
    print("devices", torch.cuda.is_available(), torch.cuda.device_count())
    device = torch.device(f"cuda:{os.environ['WANT']}")
    torch.cuda.set_device(device)
    model = torch.nn.Linear(2, 1).to(device)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["PORT"], RANK="0", WORLD_SIZE="1")
    dist.init_process_group("nccl")
    wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    loss = wrapped(torch.ones(4, 2).to(device)).sum()
    loss.backward()
    print("trained on", loss.device, dist.get_backend())
    dist.destroy_process_group()
"""


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_a_stand_in_gpu_the_process_can_see_works_on_the_cpu(tmp_path: Path) -> None:
    """psslurm's batch value ends in five spaces: CUDA still counts four devices, and so does the stand-in."""
    done, report = run(STANDIN_PROGRAM, tmp_path, COURSE_CUDA_STANDIN="1", CUDA_VISIBLE_DEVICES="0,1,2,3     ",
                       WANT="3", PORT=free_port())
    assert done.returncode == 0, done.stderr
    assert "devices True 4" in done.stdout and "trained on cpu gloo" in done.stdout
    assert report.cuda_standin["devices"] == 4 and report.cuda_standin["asked"] == [3]
    assert report.cuda_standin["refused"] is None and report.cuda_standin["backend"] == "nccl"
    assert report.probed["dist"]["backend"] == "gloo"


def test_a_stand_in_gpu_past_those_the_process_sees_fails_as_cuda_does(tmp_path: Path) -> None:
    """A task that psslurm gave one GPU (CUDA_VISIBLE_DEVICES=1, seen as cuda:0) and that asks for cuda:1."""
    done, report = run(STANDIN_PROGRAM, tmp_path, COURSE_CUDA_STANDIN="1", CUDA_VISIBLE_DEVICES="1", WANT="1",
                       PORT=free_port(), SLURM_PROCID="1", SLURM_LOCALID="1")
    assert done.returncode == 1 and "CUDA error: invalid device ordinal" in done.stderr
    assert "devices True 1" in done.stdout
    assert report.cuda_standin["refused"] == "cuda:1" and report.exception.startswith("RuntimeError: CUDA error")
    problem = unseen_gpu_problems([report])
    assert len(problem) == 1 and "rank 1" in problem[0] and "asked for cuda:1 but sees 1 GPU" in problem[0], problem


def test_without_the_switch_torch_is_left_as_it_is(tmp_path: Path) -> None:
    """The stand-in is for jobs on stand-in GPUs only: elsewhere a CPU-only torch still says it has no CUDA."""
    import torch

    if torch.cuda.is_available():
        import pytest
        pytest.skip("not checked: this machine has real CUDA, so the stand-in never applies; it is checked on CPUs")
    done, report = run("import torch; print(torch.cuda.is_available(), torch.cuda.device_count())", tmp_path,
                       CUDA_VISIBLE_DEVICES="0,1")
    assert done.returncode == 0 and done.stdout.split() == ["False", "0"] and report.cuda_standin is None
    assert unseen_gpu_problems([report]) == []
