"""Steps on the login node: set-up lines run in a login shell, as an instructor would type them there."""
from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def shell(what: str, lines: Sequence[str], env: Mapping[str, str], log: Path, timeout: float | None = None) -> None:
    """Run `lines` joined by && in `bash -l`; all output goes to `log`, a failure raises RuntimeError with its last
    line and the log's place."""
    done = subprocess.run(["bash", "-lc", " && ".join(lines)], env=dict(env), capture_output=True, text=True,
                          timeout=timeout)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"the {what} step failed ({last}); see {log}")
