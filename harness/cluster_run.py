"""One `pytest --cluster` run: prepare on the login node, submit every job at once, wait for all, judge each.

Generic: the jobs are the ones the exercise modules declare (harness/exercises/), their batch scripts the course's
own sbatch files (`slurm/*.sbatch`). Each job gets a folder `slurm-out/<run-tag>/<job>/` holding copies of the
script and its programs; it is also the job's working directory, so the script finds `python <program>.py` beside it,
exactly as a student submits it. Every Python process of the job reports what it got (cores, GPUs, hosts, the
network it tried) through harness/jobsite/sitecustomize.py into `<job>/reports/`: the verdict judges what the job
really got, not only what it printed.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from harness import course_venv, login, references, slurm
from harness.exercises import ClusterJob, cluster_jobs
from harness.report import Report, read_reports, report_env
from harness.sites import ROOT, JobSettings, Site

# Signs in a job's output that it tried to download something (besides what the reporter saw)
NETWORK_SIGNS = ('Downloading: "http', "urlopen error", "URLError", "Temporary failure in name resolution",
                 "Network is unreachable", "ProxyError")
REPORTS = "reports"  # the folder inside a job's folder where its processes report
BASELINE = "baseline"  # the folder inside a job's folder of its baseline run (ClusterJob.baseline)


@dataclass
class JobResult:
    """What a cluster job's own check (`ClusterJob.check` in harness/exercises/) gets to judge."""
    site: Site
    settings: dict  # the job's [jobs.<name>] values of the site profile, defaults filled in
    job: slurm.Job  # Slurm's view: state, exit_code, elapsed_s, job_id
    workdir: Path  # the job's folder: staged files, output.<id>, error.<id>, and whatever the job wrote there
    output: str  # output.<jobid>
    errors: str  # error.<jobid>
    reports: list[Report]  # one per Python process of the job's programs, oldest first
    follow_ups: list[slurm.Job] = field(default_factory=list)  # its chain (ClusterJob.follow_ups), in order
    baseline: JobResult | None = None  # its baseline run (ClusterJob.baseline), where it declares one


@dataclass
class Verdict(slurm.Status):
    """A job's verdict: Slurm's last status of it (NOT SUBMITTED: it never got a job id) and the harness's judgement."""
    test: str
    job_id: str = ""
    state: str = field(default="NOT SUBMITTED", kw_only=True)
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


def what_it_got(reports: list[Report]) -> dict:
    """Figures every job's verdict shows: cores and GPUs its programs got, the nodes they ran on."""
    if not reports:
        return {}
    return {"cores": min(r.cores or 0 for r in reports), "gpus": min(r.gpus_of_job for r in reports),
            "nodes": ",".join(sorted({r.node for r in reports})), "processes": len(reports)}


def generic_problems(result: JobResult, cluster_job: ClusterJob) -> list[str]:
    """What is wrong with any course job that completed: no program, no GPUs, too few cores, internet."""
    sbatch, programs = cluster_job.sbatch, result.reports
    if not programs:
        return [f"no process of {', '.join(cluster_job.programs)} reported back: the program never started "
                f"(read the error file)"]
    problems = []
    if cluster_job.gpus:
        want, got = result.site.gpus_per_node, min(r.gpus_of_job for r in programs)
        if got == 0:
            problems.append(f"Slurm gave the job no GPU (CUDA_VISIBLE_DEVICES is not set): on {result.site.name} a "
                            f"job gets GPUs only when it asks; add `#SBATCH --gres=gpu:{want}` to {sbatch}")
        elif got < want:
            problems.append(f"the job got {got} of the {want} GPUs of a node: ask for `--gres=gpu:{want}` "
                            f"in {sbatch}")
    want_cores = result.settings["cpus_per_task"]
    got_cores = min(r.cores or 0 for r in programs)
    if got_cores < want_cores:
        problems.append(f"the program could use {got_cores} of the {want_cores} cores the job asked for: add "
                        f"`export SRUN_CPUS_PER_TASK=\"$SLURM_CPUS_PER_TASK\"` before srun in {sbatch} (since "
                        f"Slurm 22.05 srun does not pass --cpus-per-task on)")
    reached = [entry for r in programs for entry in r.network]
    reached += [sign for sign in NETWORK_SIGNS if sign in result.output + result.errors]
    if reached:
        problems.append(f"the job tried to reach the internet ({reached[0]}): compute nodes have none; download "
                        f"on the login node first")
    return problems


def job_files(folder: Path, job_id: str) -> tuple[str, str]:
    """What a job wrote to `output.<id>` and `error.<id>` in `folder` ("" for a file it did not write)."""
    def text(kind: str) -> str:
        path = folder / f"{kind}.{job_id}"
        return path.read_text(errors="replace") if path.is_file() else ""

    return text("output"), text("error")


def baseline_result(result: JobResult, job: slurm.Job, programs: tuple[str, ...]) -> JobResult:
    """A job's baseline run (ClusterJob.baseline) as the job's check gets it: Slurm's view of it, and the files and
    reports in its folder `<job>/baseline/`. How it ended is the check's to judge (it may need it for a figure)."""
    folder = result.workdir / BASELINE
    return JobResult(result.site, result.settings, job, folder, *job_files(folder, job.job_id),
                     read_reports(folder / REPORTS, programs))


def judge(job: slurm.Job, workdir: Path, cluster_job: ClusterJob | None = None, site: Site | None = None,
          settings: JobSettings | None = None, follow_ups: list[slurm.Job] | None = None,
          baseline: slurm.Job | None = None) -> Verdict:
    """A finished job's verdict: Slurm's state and exit code first, then, for a course job, what its programs
    reported (GPUs, cores, internet), its own check (given its baseline run too, if any), and its figures against
    the site's references ([jobs.<name>.reference], harness/references.py). Writes `summary.json` next to the job's
    output files."""
    verdict = Verdict(test=job.name, job_id=job.job_id, state=job.state, exit_code=job.exit_code,
                      elapsed_s=job.elapsed_s, history=list(job.history), results=str(workdir))
    output, errors = job_files(workdir, job.job_id)
    verdict.problems += slurm.end_problems(job, "the job")
    for later in follow_ups or []:  # a chain: every follow-up must end well too
        verdict.history.append(later.line())
        verdict.problems += slurm.end_problems(later, f"the follow-up job {later.job_id}")
    if cluster_job is not None and site is not None:
        settings = settings or site.job(job.name)
        reports = read_reports(workdir / REPORTS, cluster_job.programs)
        output += "".join("".join(job_files(workdir, later.job_id)) for later in follow_ups or [])
        result = JobResult(site, settings.as_dict(), job, workdir, output, errors, reports, list(follow_ups or []))
        if baseline is not None:
            verdict.history.append(baseline.line())
            result.baseline = baseline_result(result, baseline, cluster_job.programs)
        figures, own = cluster_job.check(result)
        verdict.figures = {**what_it_got(reports), **figures}
        if not verdict.problems:  # what the programs did only means something for a job that completed
            # a figure its own check could not give (its problem says why) is not named missing on top of it
            held = {k: ref for k, ref in settings.references.items() if not own or verdict.figures.get(k) is not None}
            verdict.problems += generic_problems(result, cluster_job) + own + references.problems(
                held, verdict.figures, f"jobs.{job.name}.reference of {site.path.name}")
    verdict.passed = not verdict.problems
    if not verdict.passed:
        verdict.error_tail = slurm.tail(workdir / f"error.{job.job_id}")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "summary.json").write_text(json.dumps(asdict(verdict), indent=2) + "\n")
    return verdict


def new_tag() -> str:
    return time.strftime("%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def default_out_dir() -> Path:
    return Path(os.environ.get("COURSE_SLURM_OUT", ROOT / "slurm-out"))


class ClusterRun:
    """Everything one --cluster session submits, so that all of it can be judged and all of it cancelled.

    `sources` replaces staged files by name (`{"<job>.sbatch": Path(...)}`): the harness's own tests submit
    deliberately broken copies of course files that way, through the very same run.
    """

    def __init__(self, site: Site, names: list[str], *, target: str = "solutions", out_dir: Path | None = None,
                 log: Callable[[str], None] = print, tag: str | None = None,
                 sources: dict[str, Path] | None = None):
        known = cluster_jobs()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown cluster job(s) {unknown}: known are {sorted(known)}")
        self.site, self.names, self.target, self.log = site, names, target, log
        self.sources = dict(sources or {})
        self.tag = tag or new_tag()
        self.out_dir = out_dir or default_out_dir()
        self.folder = self.out_dir / self.tag
        self.course_venv = Path(site.expand(site.course_venv, out=self.out_dir))
        self.jobs: dict[str, slurm.Job] = {}
        self.follow_ups: dict[str, list[slurm.Job]] = {}  # name -> the jobs submitted behind it (afterany)
        self.baselines: dict[str, slurm.Job] = {}  # name -> its baseline run (ClusterJob.baseline)
        self.error = ""  # why the run could not start (one line), if it could not
        self.verdicts: dict[str, Verdict] = {}

    @staticmethod
    def cluster_job(name: str) -> ClusterJob:
        return cluster_jobs()[name][1]

    # --- on the login node, before submitting ------------------------------------------------------------------
    def login_shell(self, what: str, lines: list[str], env: dict[str, str], log: Path) -> None:
        """Run set-up lines in a login shell on this (login) node; a failure is one line and a log file."""
        self.log(f"{what} on the login node: {' && '.join(lines)}")
        login.shell(what, lines, env, log)

    def login_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a login-node step: ours, the course venv's place, and `extra`."""
        return {**os.environ, "COURSE_VENV": str(self.course_venv), **(extra or {})}

    def ensure_venv(self) -> None:
        """Create the course venv from venv-template/ where the site says how and it is not there yet."""
        if self.site.venv_setup and not course_venv.ready(self.course_venv):
            self.log(f"venv set-up on the login node: {' && '.join(self.site.venv_setup)}")
            course_venv.make(self.course_venv, self.site.venv_setup, self.login_env(), self.folder / "venv-setup.log")

    def stage(self, cluster_job: ClusterJob, workdir: Path | None = None) -> Path:
        """The job's folder (or `workdir`), holding copies of its batch script and programs (or of their `sources`
        stand-ins)."""
        workdir = workdir or self.folder / cluster_job.name
        workdir.mkdir(parents=True, exist_ok=True)
        for name, default in ((cluster_job.sbatch, ROOT / "slurm" / cluster_job.sbatch),
                              *((p, ROOT / self.target / p) for p in cluster_job.programs)):
            source = self.sources.get(name, default)
            if not source.is_file():
                raise RuntimeError(f"{source} is missing")
            shutil.copy2(source, workdir / name)
        return workdir

    def job_env(self, name: str, workdir: Path, prepared: dict[str, str]) -> dict[str, str]:
        """The environment sbatch hands the job: the reporter on, the site's knobs, what the login node prepared,
        and, where the site says so, no internet (as on a compute node)."""
        base = {**os.environ, "COURSE_VENV": str(self.course_venv), **self.site.job(name).env, **prepared}
        return report_env(workdir / REPORTS, offline=self.site.caches.block_network, base=base)

    # --- the run ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Prepare and submit every job at once. A failure cancels what was submitted and is kept in .error."""
        try:
            slurm.require_sbatch()
            self.folder.mkdir(parents=True, exist_ok=True)
            self.log(f"cluster run {self.tag} on site {self.site.name}: results in {self.folder}")
            staged = {name: self.stage(self.cluster_job(name)) for name in self.names}
            for name, workdir in staged.items():
                cluster_job = self.cluster_job(name)
                if cluster_job.needs_venv:
                    self.ensure_venv()
                prepared = cluster_job.prepare(self, workdir) if cluster_job.prepare else {}
                env = self.job_env(name, workdir, prepared)
                chain: list[slurm.Job] = []  # the job, then its follow-ups: each starts when the one before it
                for _ in range(1 + cluster_job.follow_ups):  # has ended, however it ended (afterany)
                    chain.append(slurm.submit(
                        workdir / cluster_job.sbatch, name=name, tag=self.tag, chdir=workdir, results=workdir,
                        site=self.site, env=env, options=[f"--dependency=afterany:{chain[-1].job_id}"] if chain else [],
                        exclude=[j.job_id for j in chain]))
                    self.jobs[name], self.follow_ups[name] = chain[0], chain[1:]  # all submitted can be cancelled
                self.jobs[name].requeues_itself = cluster_job.requeues_itself
                knobs = " ".join(f"{k}={v}" for k, v in self.site.job(name).env.items())
                later = " ".join(j.job_id for j in self.follow_ups[name])
                self.log(f"submitted {name} as job {self.jobs[name].job_id} ({cluster_job.sbatch}"
                         f"{', ' + knobs if knobs else ''}){', follow-ups ' + later if later else ''}")
                if cluster_job.baseline:
                    self.submit_baseline(cluster_job, workdir, prepared, chain)
        except (slurm.SlurmError, RuntimeError, subprocess.CalledProcessError, OSError) as error:
            detail = getattr(error, "stderr", "") or ""
            self.error = str(error) + (f": {detail.strip().splitlines()[-1]}" if detail.strip() else "")
            self.cancel()

    def submit_baseline(self, cluster_job: ClusterJob, workdir: Path, prepared: dict[str, str],
                        before: list[slurm.Job]) -> None:
        """The job's baseline run (ClusterJob.baseline): the same script with the baseline's options on the command
        line (they override its #SBATCH lines), from its own folder with its own reports, on what the login node
        prepared for the job. Submitted with it, under its run label, so a wait and a cancel take it too."""
        name, folder = cluster_job.name, workdir / BASELINE
        self.stage(cluster_job, folder)
        job = slurm.submit(folder / cluster_job.sbatch, name=name, tag=self.tag, chdir=folder, results=folder,
                           site=self.site, env=self.job_env(name, folder, prepared), options=list(cluster_job.baseline),
                           exclude=[j.job_id for j in before])
        job.name = f"{name}-{BASELINE}"  # what the log lines call it
        self.baselines[name] = job
        self.log(f"submitted {name}'s baseline as job {job.job_id} ({cluster_job.sbatch} "
                 f"{' '.join(cluster_job.baseline)})")

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> dict[str, Verdict]:
        """Wait for every job together, then judge each one and write the summaries."""
        if self.verdicts:
            return self.verdicts
        if not self.error:
            slurm.wait(self.all_jobs(), time_margin_s=self.site.time_margin_s,
                       pending_limit_s=self.site.pending_limit_s, log=self.log, sleep=sleep)
        self.verdicts = {name: self._judge(name) for name in self.names}
        self._write_summary()
        return self.verdicts

    def _judge(self, name: str) -> Verdict:
        job = self.jobs.get(name)
        if job is None:
            return Verdict(test=name, problems=[self.error or "the job was not submitted"])
        return judge(job, self.folder / name, self.cluster_job(name), self.site,
                     follow_ups=self.follow_ups.get(name, []), baseline=self.baselines.get(name))

    def all_jobs(self) -> list[slurm.Job]:
        """Every job of the run: the exercises' jobs, their follow-ups and their baselines."""
        return [*self.jobs.values(), *(job for chain in self.follow_ups.values() for job in chain),
                *self.baselines.values()]

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
        ids = slurm.cancel(self.all_jobs(), tag=self.tag)
        if ids:
            self.log(f"cancelled jobs of run {self.tag}: {' '.join(ids)}")
        return ids
