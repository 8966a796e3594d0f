"""The course venv: made once from venv-template/ the way a site profile says (`venv_setup`), unless it is there.

One maker for every caller: a `pytest --cluster` run on the login node (`ClusterRun.ensure_venv`), the tests that
submit course scripts to the local cluster (`localcluster.local_course_venv`), and bench.
"""
from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import login

TEMPLATE = Path(__file__).resolve().parent.parent / "venv-template"


def ready(venv: Path) -> bool:
    return (venv / "venv" / "bin" / "python").exists()


def make(venv: Path, setup: Sequence[str], env: Mapping[str, str], log: Path) -> None:
    """Copy venv-template/ to `venv` (its own venv/ left out) and run the site's `setup` lines in a login shell with
    COURSE_VENV set, unless `venv` holds a venv already or the site gives no lines. A failure raises RuntimeError
    with the last line of the output; all of it is in `log` (harness.login.shell)."""
    if not setup or ready(venv):
        return
    if not (venv / "setup.sh").is_file():
        shutil.copytree(TEMPLATE, venv, dirs_exist_ok=True, ignore=shutil.ignore_patterns("venv"))
    login.shell(f"venv set-up in {venv}", setup, {**env, "COURSE_VENV": str(venv)}, log, timeout=1800)
