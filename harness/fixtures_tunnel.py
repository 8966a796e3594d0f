"""Fixtures for exercise 3: a real sshd, TensorBoard run by the target's tensorboard.sh, the target's tunnel.sh.

They are module-scoped (one of each for tests/test_tunnel.py, about 4 s to start) and stop their processes at
teardown, pass or fail. `--target exercises` runs the student's scripts here instead of the solutions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from harness import tunnel as parts
from harness.requires import require_command, require_root


def require_ssh_parts() -> None:
    """The real OpenSSH server and client; sshd must run as root to let a key log in."""
    require_root("the test sshd (privilege separation, logging in as the current user)")
    require_command(parts.SSHD, "install the Debian package openssh-server")
    require_command("ssh", "install the Debian package openssh-client")
    require_command("ssh-keygen", "install the Debian package openssh-client")


def write_training_events(logdir: Path, steps: int = 20) -> Path:
    """Event files shaped like fastai's TensorBoardCallback output: a falling `train_loss` per step."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logdir))
    try:
        for step in range(steps):
            writer.add_scalar("train_loss", 2.0 / (1 + step), step)
    finally:
        writer.close()
    return logdir


@pytest.fixture(scope="session")
def tensorboard_logdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `runs/` folder TensorBoard serves: the event files of the cat classifier's real training run
    (session fixture `cat_run` of harness/fixtures_data.py); event files of our own only where no such
    fixture is registered."""
    try:
        run = request.getfixturevalue("cat_run")
    except pytest.FixtureLookupError:
        return write_training_events(tmp_path_factory.mktemp("training") / "runs")
    runs = Path(run.workdir) / "runs"
    if getattr(run, "returncode", 0) != 0:
        explain = run.explain() if hasattr(run, "explain") else ""
        pytest.fail("first finish exercise 2: TensorBoard shows the logs of its training run, which failed\n"
                    f"{explain}", pytrace=False)
    if not any(runs.rglob("events.out.tfevents.*")):
        pytest.fail(f"the training run wrote no TensorBoard event files in {runs}", pytrace=False)
    return runs


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[parts.SshServer]:
    """An OpenSSH server on 127.0.0.1 (a free port) that lets a key generated for this test log in."""
    require_ssh_parts()
    with parts.start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def tensorboard_server(target_dir: Path, tensorboard_logdir: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[parts.Running]:
    """The target's tensorboard.sh over the training run's event files, answering on 127.0.0.1 (`.port`)."""
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
