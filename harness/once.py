"""Work done once per test run, not once per xdist worker.

Session fixtures run in every xdist worker. For expensive work whose result is files (the book's HTML, the Mini-Pets
stand-ins, the offline cat training), `once_per_run` hands every worker the same folder under a file lock: the
first worker does the work, the others wait for it and then reuse what it left there.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest


def run_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this test run: under xdist, the folder that holds every worker's own one."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """Yield the run's folder `name` while holding its lock; what the first holder writes there, later ones find."""
    shared = run_temp(tmp_path_factory)
    folder = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder.mkdir(exist_ok=True)
        yield folder


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """The run's folder `name` once `make(folder)` has filled it, which happens once per test run (a `complete`
    mark tells the later holders; a run cut short before it is made again)."""
    with once_per_run(tmp_path_factory, name) as root:
        if not (root / "complete").exists():
            make(root)
            (root / "complete").touch()
    return root
