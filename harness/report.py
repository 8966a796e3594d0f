"""What a course program reports about itself through harness/jobsite/sitecustomize.py: the one reader of it.

A program started with `report_env(folder)` in its environment leaves one JSON file per Python process in `folder`
when it exits. `read_reports(folder)` gives them back as `Report`s: the same figures for a local check and for a
batch job on a cluster, and nothing of it in the student's file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

JOBSITE = Path(__file__).resolve().parent / "jobsite"  # the folder holding sitecustomize.py
DEAD_PROXY = "http://127.0.0.1:9"  # nobody listens there: downloads by non-Python tools fail at once
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


def cuda_standin_env(gpus_real: bool) -> dict[str, str]:
    """What a job's environment needs so that, on a site whose GPUs are stand-ins (`gpus_real = false`), its programs
    meet CUDA's rule for the GPUs they were given (harness/jobsite/sitecustomize.py, COURSE_CUDA_STANDIN): a task
    that asks for a GPU it cannot see fails with "invalid device ordinal", as on a GPU node. Nothing on real GPUs."""
    return {} if gpus_real else {"COURSE_CUDA_STANDIN": "1"}


def report_env(folder: Path | str | None, *, offline: bool = False, base: dict[str, str] | None = None,
               detail: str = "") -> dict[str, str]:
    """`base` (default: this process's environment) with the reporter switched on (with `detail`, see
    harness/jobsite/sitecustomize.py), and the network refused when `offline` (the no-root way of a compute node
    without internet)."""
    env = dict(os.environ if base is None else base)
    if detail:
        env["COURSE_REPORT_DETAIL"] = detail
    env["PYTHONPATH"] = os.pathsep.join([str(JOBSITE), *filter(None, [env.get("PYTHONPATH", "")])])
    if folder is not None:
        env["COURSE_REPORT_DIR"] = str(folder)
    if offline:
        env["COURSE_OFFLINE"] = "1"
        env.update({key: DEAD_PROXY for key in PROXY_VARIABLES})
        env["no_proxy"] = env["NO_PROXY"] = ""
    return env


@dataclass
class Report:
    """One Python process of a course program, as it saw itself."""
    pid: int
    host: str
    argv: list[str]
    cores: int | None = None
    cuda_visible_devices: str | None = None
    slurm: dict = field(default_factory=dict)
    rank: dict = field(default_factory=dict)
    network: list[str] = field(default_factory=list)
    exception: str | None = None
    written: list[str] = field(default_factory=list)  # files opened for writing
    float64: bool = False  # COURSE_FLOAT64=1 took: torch computed in float64
    cuda_standin: dict | None = None  # COURSE_CUDA_STANDIN: devices seen, ordinals asked for, the one refused
    started: float = 0.0
    ended: float = 0.0
    path: Path | None = None
    probed: dict = field(default_factory=dict)  # what the exercises' probes recorded (harness/exercises/*/probe.py)

    @property
    def program(self) -> str:
        """The script's file name (`train.py`), or the interpreter's first argument."""
        return Path(self.argv[0]).name if self.argv else ""

    @property
    def node(self) -> str:
        """The Slurm node the process ran on (its host name outside Slurm)."""
        return self.slurm.get("nodename") or self.host

    @property
    def gpus_allocated(self) -> int:
        """GPUs Slurm handed to the process (CUDA_VISIBLE_DEVICES), 0 when it gave none."""
        value = (self.cuda_visible_devices or "").strip()
        return len([g for g in value.split(",") if g.strip()]) if value and value != "NoDevFiles" else 0

    @property
    def gpus_of_job(self) -> int:
        """GPUs the job got on the process's node: SLURM_JOB_GPUS, set for the batch script and passed on to its
        steps. A task may see fewer: psslurm gives each of several tasks on a node one GPU (gpus_allocated)."""
        value = self.slurm.get("job_gpus")
        return len([g for g in value.split(",") if g.strip()]) if value else self.gpus_allocated


def unseen_gpu_problems(reports: list[Report]) -> list[str]:
    """The first process that asked for a GPU it cannot see (CUDA's "invalid device ordinal", or the stand-in's
    record of it), named with its cause: on JURECA-DC (psslurm) each of several tasks on a node sees one GPU."""
    for report in reports:
        standin = report.cuda_standin or {}
        asked = standin.get("refused")
        if not asked and "invalid device ordinal" not in (report.exception or ""):
            continue
        rank = report.rank.get("rank", report.slurm.get("procid", "?"))  # torchrun's rank, else srun's task
        local = report.rank.get("local_rank", report.slurm.get("localid"))
        who = f"rank {rank} on {report.node}"
        return [f"{who}{f' (local id {local})' if local is not None else ''} asked for {asked or 'a GPU'} but sees "
                f"{standin.get('devices', '?')} GPU(s) (CUDA_VISIBLE_DEVICES={report.cuda_visible_devices!r}): "
                "invalid device ordinal. A task sees only the GPUs the job asked for (--gres), and on JURECA-DC "
                "psslurm gives each of several tasks on a node one GPU of its own: start no more processes than the "
                "task sees GPUs, and pick among them (torch.cuda.device_count())"]
    return []


def read_files(folder: Path | str) -> dict[str, list[str]]:
    """COURSE_REPORT_DETAIL=reads=GLOB: rank (SLURM_PROCID, else RANK, else 0) -> the matching files its process and
    the workers forked from it opened, in the order they opened them."""
    found: dict[str, list[str]] = {}
    for path in sorted(Path(folder).glob("read-*.txt")):
        rank = path.stem.split("-")[-2]
        found.setdefault(rank, []).extend(path.read_text().split("\n")[:-1])
    return found


def read_reports(folder: Path | str, programs: tuple[str, ...] | list[str] = ()) -> list[Report]:
    """Every report in `folder` (only those of `programs`, by file name, when given), oldest first."""
    reports = []
    for path in sorted(Path(folder).glob("report-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        known = {name for name in Report.__dataclass_fields__ if name not in ("probed", "path")}
        report = Report(**{k: v for k, v in data.items() if k in known}, path=path,
                        probed={k: v for k, v in data.items() if k not in known})
        if not programs or report.program in programs:
            reports.append(report)
    return sorted(reports, key=lambda r: r.started)
