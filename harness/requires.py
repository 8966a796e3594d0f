"""Requirements of a test: skip on a laptop that lacks them, fail in CI where a skip would hide a broken feature."""
from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """CI sets CI=true; there every feature must really run."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(ok: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) with `reason` unless `ok`."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_root(what: str) -> None:
    require(os.geteuid() == 0, f"{what} needs root (run the tests as root, e.g. in a container or VM)")


def require_command(cmd: str, hint: str = "") -> str:
    path = shutil.which(cmd) or (cmd if os.path.isabs(cmd) and os.access(cmd, os.X_OK) else None)
    require(path is not None, f"`{cmd}` not found{': ' + hint if hint else ''}")
    return path  # type: ignore[return-value]
