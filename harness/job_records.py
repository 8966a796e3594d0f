"""A finished job and what its processes reported, as Slurm and harness/jobsite/sitecustomize.py leave them: for
tests of a cluster job's verdict without a cluster (the real reporter is proven in the live cluster runs)."""
from __future__ import annotations

import json
from pathlib import Path

from harness.slurm import Job


def finished(name: str, job_id: str, state: str = "COMPLETED", exit_code: str = "0:0") -> Job:
    """Slurm's view of a job that has ended."""
    return Job(name=name, job_id=job_id, label=f"{name}-t", state=state, exit_code=exit_code)


def write_report(folder: Path, program: str, **fields) -> None:
    """One process's report in `folder/reports/`, as the reporter writes it (a JSC node, 128 cores, 4 GPUs)."""
    (folder / "reports").mkdir(parents=True, exist_ok=True)
    data = {"pid": 1, "host": "jrc0001", "argv": [program], "cores": 128, "cuda_visible_devices": "0,1,2,3",
            "slurm": {"nodename": "jrc0001"}, "network": [], "fits": [], **fields}
    (folder / "reports" / f"report-jrc0001-{data['pid']}.json").write_text(json.dumps(data))
