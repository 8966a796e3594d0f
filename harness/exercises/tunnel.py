"""Exercise 3: TensorBoard on the login node, seen from the laptop through an `ssh -N -L` tunnel.

Fixtures with real parts: an OpenSSH server on 127.0.0.1 run as the current user (no root needed), TensorBoard
started by the target's tensorboard.sh, the target's tunnel.sh. Each is module-scoped (about 4 s to start) and
stops its processes at teardown, pass or fail. `--target exercises` runs the student's scripts instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from harness import tunnel as parts
from harness.exercises import Exercise
from harness.requires import require_command


def require_ssh_parts() -> None:
    """The real OpenSSH server and client."""
    require_command(parts.SSHD, "install the Debian package openssh-server")
    require_command("ssh", "install the Debian package openssh-client")
    require_command("ssh-keygen", "install the Debian package openssh-client")


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
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[parts.Running]:
    """The target's tensorboard.sh over the event files, answering on 127.0.0.1 (`.port`)."""
    log = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    with parts.start_tensorboard(target_dir / "tensorboard.sh", tensorboard_logdir, log=log) as run:
        yield run


@pytest.fixture(scope="module")
def tunnel(target_dir: Path, sshd: parts.SshServer, tensorboard_server: parts.Running,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[parts.Running]:
    """The target's tunnel.sh: `ssh -N -L` from a free local port (`.port`) to TensorBoard, through `sshd`."""
    log = tmp_path_factory.mktemp("tunnel") / "tunnel.log"
    with parts.start_tunnel(target_dir / "tunnel.sh", sshd, tensorboard_server.port, log=log) as run:
        yield run


def taken_port_problems(outcome: parts.Outcome) -> list[str]:
    """The lesson's rule for tunnel.sh: when its local port is taken on the laptop, ssh stops with an error
    (`-o ExitOnForwardFailure=yes`) instead of hanging on as a tunnel that carries nothing."""
    said = parts.FORWARD_FAILED in outcome.output
    last = next((line for line in reversed(outcome.output.splitlines()) if line.strip()), "no output")
    if outcome.returncode is None and said:
        return ["tunnel.sh kept running although its local port was taken, so the tunnel carries nothing and "
                "nobody is told: make ssh stop with an error then (-o ExitOnForwardFailure=yes)"]
    if outcome.returncode is None:
        return [f"tunnel.sh neither stopped nor reported the taken local port within {outcome.waited_s:.0f} s: {last}"]
    if outcome.returncode == 0:
        return ["tunnel.sh ended with exit code 0 although its local port was taken: it must fail (ssh -N -o "
                "ExitOnForwardFailure=yes -L ...)"]
    if not said:
        return [f"tunnel.sh failed (exit code {outcome.returncode}) before it tried the local port: {last}"]
    return []


def exec_problems(port_still_open: bool) -> list[str]:
    """The lesson's rule for tensorboard.sh: `exec`, so that stopping the script (kill PID) stops TensorBoard."""
    if port_still_open:
        return ["tensorboard.sh: after its own process was stopped, TensorBoard still answered on its port: start it "
                "with exec, so that the script becomes TensorBoard and stopping one stops the other"]
    return []


EXERCISE = Exercise(
    key="tunnel", number=3, title="TensorBoard through an SSH tunnel", day=1, lesson="book/tensorboard.md",
    programs=("tensorboard.sh", "tunnel.sh", "ssh_config.example"), tests=("tests/test_tunnel.py",),
)
