"""One `pytest --cluster` run: prepare caches, submit every job at once, wait for all, judge each.

The jobs are the course's own sbatch files (`slurm/*.sbatch`); a copy of the script and of the exercise
program goes into the job's results folder `slurm-out/<run-tag>/<test>/`, which is also its working
directory, so the batch script finds `python cats.py` next to it, exactly as a student submits it.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from harness import slurm
from harness.sites import ROOT, Site

# Downloads in a job fail at once through a proxy nobody listens on: "no internet", as on a compute node
DEAD_PROXY = "http://127.0.0.1:9"
# Signs in a job's output that it tried to download something
NETWORK_SIGNS = ('Downloading: "http', "urlopen error", "URLError", "Temporary failure in name resolution",
                 "Network is unreachable", "ProxyError", "Connection refused")


@dataclass
class JobResult:
    """What a cluster job's own check (`ClusterJob.check` in harness/exercises/) gets to judge."""
    site: Site
    settings: dict  # the job's [jobs.<name>] values of the site profile, defaults filled in
    job: slurm.Job  # Slurm's view: state, exit_code, elapsed_s, job_id
    workdir: Path  # the job's folder: staged files, output.<id>, error.<id>, and whatever the job wrote there
    output: str  # output.<jobid>
    errors: str  # error.<jobid>
    reports: list  # harness.report.Report of each Python process of the job's programs, oldest first


@dataclass(frozen=True)
class ClusterJob:
    """A cluster test: which batch script and program it runs, and how its output is judged."""
    name: str
    sbatch: str  # in slurm/
    program: str  # in solutions/ or exercises/
    check: Callable[[Site, str, Path], tuple[dict, list[str]]]  # (site, output, workdir) -> (figures, problems)
    needs_caches: bool = False


def _number(pattern: str, text: str) -> float | None:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def check_matrix(site: Site, output: str, workdir: Path) -> tuple[dict, list[str]]:
    device = re.findall(r"^device: (.+)$", output, re.MULTILINE)
    checks = re.findall(r"^check: (\S+)", output, re.MULTILINE)
    figures = {"device": device[-1].strip() if device else None, "check": checks[-1] if checks else None,
               "tflops": _number(r"TFLOP/s: ([\d.]+)", output)}
    problems = []
    if figures["device"] is None:
        problems.append("no `device: <name>` line in the output")
    elif site.gpus_real and figures["device"].lower() in ("cpu", ""):
        problems.append(f"ran on `{figures['device']}`, but {site.name} has GPUs: torch saw no CUDA device")
    if figures["check"] != "passed":
        problems.append(f"the GPU-vs-CPU check did not pass (check: {figures['check']})")
    if figures["tflops"] is None:
        problems.append("no `TFLOP/s:` figure in the output")
    return figures, problems


def check_cats(site: Site, output: str, workdir: Path) -> tuple[dict, list[str]]:
    result = re.findall(r"^RESULT (.+)$", output, re.MULTILINE)
    figures: dict = {}
    if result:
        for key, value in re.findall(r"(\w+)=(\S+)", result[-1]):
            try:
                figures[key] = float(value)
            except ValueError:
                figures[key] = value
    problems = []
    bar = site.job("cats").error_rate_max
    if "error_rate" not in figures:
        problems.append("no `RESULT ... error_rate=...` line in the output")
    elif bar is not None and figures["error_rate"] > bar:
        problems.append(f"error rate {figures['error_rate']} is above the bar {bar} of {site.path.name}")
    if not (workdir / "models" / "model.pth").is_file():
        problems.append("models/model.pth was not saved (SaveModelCallback)")
    if not list((workdir / "runs").rglob("events.out.tfevents.*")):
        problems.append("no TensorBoard event files under runs/")
    return figures, problems


JOBS = {
    "matrix": ClusterJob("matrix", "jureca-matrix.sbatch", "matrix_gpu.py", check_matrix),
    "cats": ClusterJob("cats", "fastai.sbatch", "cats.py", check_cats, needs_caches=True),
}


@dataclass
class Verdict:
    test: str
    job_id: str = ""
    state: str = "NOT SUBMITTED"
    exit_code: str = ""
    elapsed_s: int = 0
    passed: bool = False
    problems: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    error_tail: str = ""
    results: str = ""

    def report(self) -> str:
        """What an instructor reads when a job failed: state, exit code, problems, the error file's end."""
        lines = [f"{self.test} job {self.job_id or '-'}: {self.state} exit {self.exit_code or '-'} "
                 f"after {self.elapsed_s} s ({' -> '.join(self.history) or 'no states seen'})"]
        lines += [f"  - {problem}" for problem in self.problems]
        if self.results:
            lines.append(f"  results: {self.results}")
        if self.error_tail:
            lines += ["  last lines of the error file:", *("    " + line for line in self.error_tail.splitlines())]
        return "\n".join(lines)


def judge(job: slurm.Job, workdir: Path,
          check: Callable[[str, Path], tuple[dict, list[str]]] | None = None) -> Verdict:
    """A finished job's verdict: Slurm's state and exit code first, then the checks of what it printed and wrote.

    Writes `summary.json` next to the job's output and error files.
    """
    verdict = Verdict(test=job.name, job_id=job.job_id, state=job.state, exit_code=job.exit_code,
                      elapsed_s=job.elapsed_s, history=list(job.history), results=str(workdir))
    output_file, error_file = workdir / f"output.{job.job_id}", workdir / f"error.{job.job_id}"
    output = output_file.read_text(errors="replace") if output_file.is_file() else ""
    errors = error_file.read_text(errors="replace") if error_file.is_file() else ""
    if job.given_up:
        verdict.problems.append(f"cancelled by the harness: {job.given_up}")
    if job.state != "COMPLETED" or job.exit_code not in ("0:0", "0"):
        verdict.problems.append(f"the job ended {job.state} with exit code {job.exit_code or '?'}")
    if check is not None:
        verdict.figures, problems = check(output, workdir)
        if not verdict.problems:  # output checks only mean something for a job that completed
            verdict.problems += problems
            signs = [sign for sign in NETWORK_SIGNS if sign in output + errors]
            if signs:
                verdict.problems.append(f"the job tried to use the network ({signs[0]}): compute nodes have none")
    verdict.passed = not verdict.problems
    if not verdict.passed:
        verdict.error_tail = slurm.tail(error_file)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "summary.json").write_text(json.dumps(asdict(verdict), indent=2) + "\n")
    return verdict


def new_tag() -> str:
    return time.strftime("%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def default_out_dir() -> Path:
    return Path(os.environ.get("COURSE_SLURM_OUT", ROOT / "slurm-out"))


class ClusterRun:
    """Everything one --cluster session submits, so that all of it can be judged and all of it cancelled."""

    def __init__(self, site: Site, names: list[str], *, target: str = "solutions", out_dir: Path | None = None,
                 log: Callable[[str], None] = print, tag: str | None = None):
        unknown = [n for n in names if n not in JOBS]
        if unknown:
            raise ValueError(f"unknown cluster job(s) {unknown}: known are {sorted(JOBS)}")
        self.site, self.names, self.target, self.log = site, names, target, log
        self.tag = tag or new_tag()
        self.out_dir = out_dir or default_out_dir()
        self.folder = self.out_dir / self.tag
        self.course_venv = Path(site.expand(site.course_venv, out=self.out_dir))
        self.jobs: dict[str, slurm.Job] = {}
        self.error = ""  # why the run could not start (one line), if it could not
        self.verdicts: dict[str, Verdict] = {}

    # --- before submitting -------------------------------------------------------------------------------------
    def _caches(self) -> dict[str, str]:
        """FASTAI_HOME/TORCH_HOME for the jobs (and the prefetch), filled as the site says."""
        caches = self.site.caches
        env = {}
        if caches.prepare == "minipets":
            fastai_home = Path(self.site.expand(caches.fastai_home) or self.folder / "caches" / "fastai")
            torch_home = Path(self.site.expand(caches.torch_home) or self.folder / "caches" / "torch")
            self.log(f"seeding stand-in caches (Mini-Pets, resnet34 weights) in {fastai_home.parent}")
            subprocess.run([sys.executable, "-m", "harness.minipets", "--fastai-home", str(fastai_home),
                            "--torch-home", str(torch_home)], cwd=ROOT, check=True, capture_output=True, text=True)
            return {"FASTAI_HOME": str(fastai_home), "TORCH_HOME": str(torch_home)}
        for key, value in (("FASTAI_HOME", caches.fastai_home), ("TORCH_HOME", caches.torch_home)):
            if value:
                env[key] = self.site.expand(value)
        return env

    def _login_shell(self, what: str, lines: list[str], env: dict[str, str], log: Path) -> None:
        """Run set-up lines in a login shell on this (login) node; a failure is one line and a log file."""
        self.log(f"{what} on the login node: {' && '.join(lines)}")
        done = subprocess.run(["bash", "-lc", " && ".join(lines)], env=env, capture_output=True, text=True)
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise RuntimeError(f"the {what} step failed ({last}); see {log}")

    def _venv(self) -> None:
        """Create the course venv from venv-template/ where the site says how and it is not there yet."""
        if not self.site.venv_setup or (self.course_venv / "venv" / "bin" / "python").exists():
            return
        if not (self.course_venv / "setup.sh").is_file():
            shutil.copytree(ROOT / "venv-template", self.course_venv, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("venv"))
        self._login_shell("venv set-up", self.site.venv_setup, {**os.environ, "COURSE_VENV": str(self.course_venv)},
                          self.folder / "venv-setup.log")

    def _prefetch(self, workdir: Path, caches: dict[str, str]) -> None:
        """The login-node step of the lesson: download data set and weights where there is internet."""
        lines = [*self.site.setup, f"cd {shlex.quote(str(workdir))}",
                 shlex.join(["python", JOBS["cats"].program, *self.site.job("cats").args, "--prefetch"])]
        self._login_shell("prefetch", lines, {**os.environ, "COURSE_VENV": str(self.course_venv), **caches},
                          workdir / "prefetch.log")

    def _job_env(self, caches: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, "COURSE_VENV": str(self.course_venv), **caches}
        if self.site.caches.block_network:
            for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
                env[key] = DEAD_PROXY
            env["no_proxy"] = env["NO_PROXY"] = ""
        return env

    # --- the run ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Prepare and submit every job at once. A failure cancels what was submitted and is kept in .error."""
        try:
            slurm.require_sbatch()
            self.folder.mkdir(parents=True, exist_ok=True)
            self.log(f"cluster run {self.tag} on site {self.site.name}: results in {self.folder}")
            workdirs = {name: self._stage(JOBS[name]) for name in self.names}
            if "cats" in workdirs:
                self._venv()
            caches = self._caches() if any(JOBS[n].needs_caches for n in self.names) else {}
            if "cats" in workdirs and self.site.caches.prepare == "prefetch":
                self._prefetch(workdirs["cats"], caches)
            env = self._job_env(caches)
            for name in self.names:
                job = JOBS[name]
                workdir = workdirs[name]
                self.jobs[name] = slurm.submit(
                    workdir / job.sbatch, name=name, tag=self.tag, chdir=workdir, results=workdir, site=self.site,
                    args=self.site.job(name).args, env=env)
                self.log(f"submitted {name} as job {self.jobs[name].job_id} ({job.sbatch} "
                         f"{shlex.join(self.site.job(name).args)})".rstrip())
        except (slurm.SlurmError, RuntimeError, subprocess.CalledProcessError, OSError) as error:
            detail = getattr(error, "stderr", "") or ""
            self.error = str(error) + (f": {detail.strip().splitlines()[-1]}" if detail.strip() else "")
            self.cancel()

    def _stage(self, job: ClusterJob) -> Path:
        """The job's results folder, holding copies of the submitted script and its program."""
        workdir = self.folder / job.name
        workdir.mkdir(parents=True, exist_ok=True)
        for source in (ROOT / "slurm" / job.sbatch, ROOT / self.target / job.program):
            if not source.is_file():
                raise RuntimeError(f"{source} is missing")
            shutil.copy2(source, workdir / source.name)
        return workdir

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> dict[str, Verdict]:
        """Wait for every job together, then judge each one and write the summaries."""
        if self.verdicts:
            return self.verdicts
        if not self.error:
            slurm.wait(list(self.jobs.values()), time_margin_s=self.site.time_margin_s,
                       pending_limit_s=self.site.pending_limit_s, log=self.log, sleep=sleep)
        self.verdicts = {name: self._judge(name) for name in self.names}
        self._write_summary()
        return self.verdicts

    def _judge(self, name: str) -> Verdict:
        job = self.jobs.get(name)
        if job is None:
            return Verdict(test=name, problems=[self.error or "the job was not submitted"])
        return judge(job, self.folder / name, lambda output, workdir: JOBS[name].check(self.site, output, workdir))

    def _write_summary(self) -> None:
        rows = ["| test | job | state | exit | seconds | verdict | figures |", "|---|---|---|---|---|---|---|"]
        for v in self.verdicts.values():
            figures = ", ".join(f"{k}={val}" for k, val in v.figures.items() if val is not None)
            rows.append(f"| {v.test} | {v.job_id} | {v.state} | {v.exit_code} | {v.elapsed_s} | "
                        f"{'pass' if v.passed else 'FAIL: ' + '; '.join(v.problems)} | {figures} |")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "summary.md").write_text(
            f"# Cluster run {self.tag} on {self.site.name}\n\n" + "\n".join(rows) + "\n")
        (self.folder / "summary.json").write_text(json.dumps(
            {"tag": self.tag, "site": self.site.name, "error": self.error,
             "verdicts": {k: asdict(v) for k, v in self.verdicts.items()}}, indent=2) + "\n")

    def cancel(self) -> list[str]:
        """Cancel every job of this run still in the queue: by id, and by run tag as a backstop."""
        ids = slurm.cancel(list(self.jobs.values()), tag=self.tag) if shutil.which("scancel") else []
        if ids:
            self.log(f"cancelled jobs of run {self.tag}: {' '.join(ids)}")
        return ids
