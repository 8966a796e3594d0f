"""Run a command without network, as it runs on a compute node.

`unshare -n` gives the command a fresh network namespace that holds only a loopback device; that
device is brought up first, since Jupyter kernels, TensorBoard and friends talk to 127.0.0.1.
Creating the namespace needs root.
"""
from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.requires import require_command, require_root

_INSIDE = 'ip link set lo up && exec "$@"'


def offline_command(cmd: Sequence[str]) -> list[str]:
    """`cmd` wrapped so that it starts in a new network namespace with loopback up."""
    return ["unshare", "--net", "--", "sh", "-c", _INSIDE, "offline", *map(str, cmd)]


def run_offline(cmd: Sequence[str | Path], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
                timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `cmd` with no network and capture its output as text (skips the test without root)."""
    require_root("running a command without network (unshare -n)")
    require_command("unshare", "install util-linux")
    require_command("ip", "install iproute2")
    return subprocess.run(offline_command([str(c) for c in cmd]), env=dict(env) if env is not None else None,
                          cwd=cwd, timeout=timeout, check=check, capture_output=True, text=True)
