"""Exercise 3's fixtures with real parts: an OpenSSH server on 127.0.0.1 run as the current user (no root needed),
TensorBoard started by the target's tensorboard.sh, the target's tunnel.sh. Each is module-scoped (about 4 s to
start) and stops its processes at teardown, pass or fail. `--target exercises` runs the student's scripts instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from harness.exercises.tunnel import parts
from harness.exercises.tunnel.checks import require_ssh_parts
from harness.processes import Running


def write_training_events(logdir: Path, steps: int = 20) -> Path:
    """Event files shaped like fastai's TensorBoardCallback output: a falling `train_loss` per step. The tunnel
    exercise checks the tunnel, so it does not wait for a training run (tests/test_cats.py checks fastai's files)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logdir))
    try:
        for step in range(steps):
            writer.add_scalar("train_loss", 2.0 / (1 + step), step)
    finally:
        writer.close()
    return logdir


@pytest.fixture(scope="session")
def tensorboard_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `runs/` folder with a training curve for TensorBoard to serve."""
    return write_training_events(tmp_path_factory.mktemp("training") / "runs")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[parts.SshServer]:
    """An OpenSSH server on 127.0.0.1 (a free port) that lets a key generated for this test log in."""
    require_ssh_parts()
    with parts.start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def tensorboard_server(target_dir: Path, tensorboard_logdir: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The target's tensorboard.sh over the event files, answering on 127.0.0.1 (`.port`)."""
    log = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    with parts.start_tensorboard(target_dir / "tensorboard.sh", tensorboard_logdir, log=log) as run:
        yield run


@pytest.fixture(scope="module")
def tunnel(target_dir: Path, sshd: parts.SshServer, tensorboard_server: Running,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The target's tunnel.sh: `ssh -N -L` from a free local port (`.port`) to TensorBoard, through `sshd`."""
    log = tmp_path_factory.mktemp("tunnel") / "tunnel.log"
    with parts.start_tunnel(target_dir / "tunnel.sh", sshd, tensorboard_server.port, log=log) as run:
        yield run
