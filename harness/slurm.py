"""Talk to Slurm: submit a batch script, poll many jobs in one call, decide when to give up, cancel.

Modelled on ReFrame's Slurm scheduler: states as named sets, one poll for every job with a decaying
poll rate, pending reasons that will never clear cancel the job, and every job can be found again by
the run tag in its name (so a retried submission never makes a duplicate, and a cancel never misses one).
"""
from __future__ import annotations

import getpass
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

# Slurm's job states, as ReFrame groups them
FINISHED = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED", "BOOT_FAIL",
                      "PREEMPTED", "DEADLINE", "SPECIAL_EXIT", "REVOKED"})
FAILURES = FINISHED - {"COMPLETED"}
PENDING = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
# What a final state means for the person reading the verdict
STATE_MEANING = {
    "FAILED": "the program exited with an error (read the error file from the bottom)",
    "TIMEOUT": "it ran past its time limit (--time) and Slurm ended it",
    "OUT_OF_MEMORY": "it used more memory than the job may (--mem); ask for more, or make the program use less",
    "NODE_FAIL": "a node of the job failed while it ran; the job is not at fault: submit it again",
    "BOOT_FAIL": "a node could not be booted for the job; the job is not at fault: submit it again",
    "PREEMPTED": "a job of higher priority took its nodes; submit it again (or ask for a requeue with --requeue)",
    "CANCELLED": "it was cancelled (by its owner, an administrator or the harness)",
    "DEADLINE": "it could not run before its deadline (--deadline)",
    "SPECIAL_EXIT": "it was put on hold after a requeue (SpecialExit) and runs again only when someone releases it",
}
MAX_REQUEUES = 3  # a job requeued more often than this (node failures, preemption) is given up
SHORT = {"PENDING": "PD", "CONFIGURING": "CF", "RUNNING": "R", "COMPLETING": "CG", "SUSPENDED": "S",
         "REQUEUED": "RQ", "RESIZING": "RS", "STOPPED": "ST", "SIGNALING": "SI", "STAGE_OUT": "SO"}
# Growth of the pause between polls: this share of the seconds since the last change of state
BACKOFF = 0.05
# Pending reasons that no amount of waiting clears: the job is cancelled and its verdict names the reason
NEVER_CLEARS = frozenset({
    "PartitionDown", "PartitionInactive", "PartitionNodeLimit", "PartitionTimeLimit",
    "PartitionConfig", "InvalidAccount", "InvalidQOS", "AccountNotAllowed", "QOSNotAllowed", "AssocMaxJobsLimit",
    "AssociationJobLimit", "ReservationDeleted", "BadConstraints", "DependencyNeverSatisfied", "JobHeldUser",
    "JobHeldAdmin", "NodeDown", "FrontEndDown", "InactiveLimit",
    "job_requeued_in_held_state",  # `scontrol requeuehold`: Slurm 22.05 shows it as PENDING with this reason
})
# Pending reasons that often mean "never", but clear by themselves when a maintenance reservation ends or a
# reservation's nodes free up: given up only after they have stood this many seconds without a change
SLOW_TO_CLEAR_S = {"ReqNodeNotAvail": 600}
# sbatch's messages for a setting the site profile got wrong -> the profile key to fix
REFUSALS = (
    ("Invalid partition", "partition"),
    ("account", "account"),
    ("reservation", "reservation"),
    ("Invalid qos", "sbatch_args"),
    ("Requested node configuration is not available", "cpus_per_task"),
    ("More processors requested than permitted", "cpus_per_task"),
    ("Invalid generic resource", "gpus_per_node"),
)
TRANSIENT = ("Socket timed out", "temporarily unable to accept job", "Resource temporarily unavailable",
             "Unable to contact slurm controller", "Transport endpoint is not connected")
COMMAND_TIMEOUT_S = 60
LOST_AFTER_S = 120  # a job Slurm has not shown this long after sbatch answered counts as lost


class SlurmError(RuntimeError):
    """A Slurm problem the user must fix; the message is one line."""


@dataclass
class JobInfo:
    """One poll's view of a job."""
    state: str
    reason: str = ""
    exit_code: str = ""
    elapsed_s: int = 0
    time_limit_s: int | None = None


@dataclass
class Job:
    """A submitted job and what the harness has seen of it."""
    name: str  # what it is for, e.g. "matrix"
    job_id: str
    job_name: str  # the Slurm job name: name plus run tag
    submitted_at: float = field(default_factory=time.monotonic)
    state: str = "SUBMITTED"
    reason: str = ""
    exit_code: str = ""
    elapsed_s: int = 0
    time_limit_s: int | None = None
    history: list[str] = field(default_factory=list)
    given_up: str = ""  # why the harness cancelled it, if it did
    cancelled_at: float | None = None
    lost: bool = False  # Slurm no longer (or never) knew it
    requeues: int = 0  # times it went back to the queue after it had started
    reason_since: float | None = None  # when its pending reason last changed
    pending_since: float | None = None  # when it (last) entered the queue: a requeue starts the wait anew

    @property
    def done(self) -> bool:
        return self.state in FINISHED or self.lost or (self.cancelled_at is not None and
                                                       time.monotonic() - self.cancelled_at > 60)

    def line(self) -> str:
        return f"{self.name} {self.job_id} {' -> '.join(self.history)}"


Runner = Callable[..., subprocess.CompletedProcess]


def _run(argv: list[str], runner: Runner = subprocess.run) -> subprocess.CompletedProcess:
    try:
        return runner(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 1, "", f"Socket timed out: `{' '.join(argv[:2])}` gave no answer")


def require_sbatch() -> str:
    path = shutil.which("sbatch")
    if path is None:
        raise SlurmError("`--cluster` needs Slurm (sbatch not found)")
    return path


def job_name(name: str, tag: str) -> str:
    return f"{name}-{tag}"


def find_by_name(name: str, runner: Runner = subprocess.run) -> list[str] | None:
    """Ids of this user's jobs called `name`, in any state the controller still remembers (None: no answer)."""
    done = _run(["squeue", "--noheader", "--states=all", f"--user={getpass.getuser()}", f"--name={name}",
                 "--format=%i"], runner)
    return done.stdout.split() if done.returncode == 0 else None


def _refusal(message: str, site) -> str:
    """One line: what sbatch said, and which key of the site profile to fix."""
    text = message.strip().splitlines()[-1] if message.strip() else "no message"
    text = re.sub(r"^sbatch: error: (Batch job submission failed: )?", "", text)
    for needle, key in REFUSALS:
        if needle.lower() in text.lower():
            if site is None:
                return f"sbatch refused the job: {text} (check --{key.replace('_', '-')})"
            value = getattr(site, key, "")
            return f"sbatch refused the job: {text}; fix `{key}` (now {value!r}) in {site.path}"
    return f"sbatch refused the job: {text}"


def submit(script: Path, *, name: str, tag: str, chdir: Path, results: Path, site=None,
           options: Iterable[str] = (), args: Iterable[str] = (), env: dict[str, str] | None = None,
           tries: int = 3, runner: Runner = subprocess.run, pause_s: float = 2.0) -> Job:
    """`sbatch --parsable` the script; a transient error is retried only if the job did not arrive."""
    results.mkdir(parents=True, exist_ok=True)
    full_name = job_name(name, tag)
    argv = [f"--job-name={full_name}", f"--chdir={chdir}", f"--output={results}/output.%j",
            f"--error={results}/error.%j"]
    argv += (site.sbatch_options(name) if site is not None else []) + list(options) + [str(script)] + list(args)
    for attempt in range(1, tries + 1):
        done = run_sbatch(argv, env=env, runner=runner)
        job_id = job_id_of(done)
        if job_id:
            return Job(name=name, job_id=job_id, job_name=full_name)
        message = (done.stderr or done.stdout).strip()
        if not any(sign.lower() in message.lower() for sign in TRANSIENT):
            raise SlurmError(_refusal(message, site))
        for _ in range(tries):  # the controller may have taken the job before the answer got lost
            arrived = find_by_name(full_name, runner)
            if arrived is not None:
                break
            time.sleep(pause_s)
        if arrived:
            return Job(name=name, job_id=arrived[0], job_name=full_name)
        if arrived is None:  # retrying blindly could submit the job twice
            raise SlurmError(f"sbatch failed ({message.splitlines()[-1]}) and Slurm cannot say whether job "
                             f"{full_name} arrived: check `squeue --name={full_name}`")
        if attempt < tries:
            time.sleep(pause_s * attempt)
    raise SlurmError(f"sbatch failed {tries} times with transient errors, last: {message.splitlines()[-1]}")


TAG = r"\d{4}-\d{6}-[0-9a-f]{4}"  # a run tag: month, day, time, four hex digits (harness/cluster_run.new_tag)


@dataclass(frozen=True)
class Orphan:
    """A job of an earlier harness run that is still in the queue."""
    job_id: str
    job_name: str
    state: str


def orphans(names: Iterable[str], tag: str = "", runner: Runner = subprocess.run) -> list[Orphan]:
    """This user's queued or running jobs named `<name>-<run tag>` for a course job `name`, from runs other than
    `tag`: what a harness killed with SIGKILL, or by a lost login session, left behind."""
    pattern = re.compile(rf"^(?:{'|'.join(map(re.escape, names))})-({TAG})$")
    listing = _run(["squeue", "--noheader", f"--user={getpass.getuser()}", "--format=%i %j %T"], runner)
    found = []
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and (match := pattern.match(parts[1])) and match[1] != tag:
            found.append(Orphan(*parts))
    return found


def cancel(jobs: Iterable[Job], tag: str | None = None, runner: Runner = subprocess.run) -> list[str]:
    """scancel by id, then by run tag as a backstop (jobs submitted but never recorded). Returns the ids."""
    ids = [job.job_id for job in jobs if job.state not in FINISHED]
    if tag:
        listing = _run(["squeue", "--noheader", f"--user={getpass.getuser()}", "--format=%i %j"], runner)
        ids += [line.split()[0] for line in listing.stdout.splitlines()
                if len(line.split()) == 2 and line.split()[1].endswith(f"-{tag}") and line.split()[0] not in ids]
    if ids:
        _run(["scancel", *ids], runner)
    return ids


def seconds(text: str) -> int | None:
    """Slurm durations ([D-]HH:MM:SS, MM:SS, minutes) in seconds; None for UNLIMITED and the like."""
    text = text.strip()
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", text)
    if match:
        days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + secs
    match = re.fullmatch(r"(\d+)-(\d+)", text)  # D-HH
    if match:
        return (int(match[1]) * 24 + int(match[2])) * 3600
    return int(text) * 60 if text.isdigit() else None


def record_fields(line: str) -> dict[str, str]:
    """`Key=Value` pairs of one `scontrol --oneliner show ...` record (values may hold spaces)."""
    return dict(re.findall(r"(?:^|\s)([A-Za-z][\w/:]*)=(.*?)(?=\s[A-Za-z][\w/:]*=|$)", line.strip()))


def show(kind: str, name: str = "", runner: Runner = subprocess.run) -> list[dict[str, str]]:
    """`scontrol --oneliner show <kind> [name]` as one dict per record ([] when Slurm does not know it)."""
    done = _run(["scontrol", "--oneliner", "show", kind, *([name] if name else [])], runner)
    return [record_fields(line) for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def run_sbatch(args: Iterable[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
               runner: Runner = subprocess.run) -> subprocess.CompletedProcess:
    """`sbatch --parsable ARGS` as it is: the caller reads the job id (`job_id_of`) or the refusal."""
    argv = [require_sbatch(), "--parsable", *map(str, args)]
    return _run(argv, lambda a, **kw: runner(a, cwd=cwd, env=env, **kw))


def job_id_of(done: subprocess.CompletedProcess) -> str | None:
    """The job id in `sbatch --parsable`'s answer (`123` or `123;cluster`), None when it refused."""
    job_id = done.stdout.strip().split(";")[0]
    return job_id if done.returncode == 0 and job_id.isdigit() else None


def parse_scontrol(text: str) -> dict[str, JobInfo]:
    """`scontrol --oneliner show job` output -> JobInfo per job id."""
    jobs = {}
    for line in text.splitlines():
        fields = record_fields(line)
        if "JobId" not in fields:
            continue
        jobs[fields["JobId"]] = JobInfo(
            state=fields.get("JobState", "UNKNOWN").split()[0], reason=fields.get("Reason", "None"),
            exit_code=fields.get("ExitCode", ""), elapsed_s=seconds(fields.get("RunTime", "0:0")) or 0,
            time_limit_s=seconds(fields.get("TimeLimit", "")))
    return jobs


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """`sacct -X -n -P -o JobIDRaw,State,ExitCode,ElapsedRaw,TimelimitRaw` -> JobInfo per job id."""
    jobs = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        limit = parts[4].strip()
        jobs[parts[0]] = JobInfo(state=parts[1].split()[0] if parts[1] else "UNKNOWN", exit_code=parts[2],
                                 elapsed_s=int(parts[3] or 0), time_limit_s=int(limit) * 60 if limit.isdigit() else None)
    return jobs


def accounting_enabled(runner: Runner = subprocess.run) -> bool:
    """Is there a slurmdbd behind sacct? (Without one, sacct only says that accounting is disabled.)"""
    config = _run(["scontrol", "show", "config"], runner).stdout
    match = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config, re.MULTILINE)
    return bool(match) and not match[1].endswith("/none")


class Poller:
    """One Slurm call for all jobs: sacct where accounting exists, else `scontrol show job`."""

    def __init__(self, use_sacct: bool | None = None, runner: Runner = subprocess.run):
        self.runner = runner
        self.use_sacct = accounting_enabled(runner) if use_sacct is None else use_sacct
        self.calls = 0

    def poll(self, ids: list[str]) -> dict[str, JobInfo] | None:
        """The jobs Slurm knows among `ids`; None when Slurm did not answer (try again later)."""
        self.calls += 1
        if not self.use_sacct:
            done = _run(["scontrol", "--oneliner", "show", "job"], self.runner)
            if done.returncode != 0 and "No jobs in the system" not in done.stdout + done.stderr:
                return None
            return {k: v for k, v in parse_scontrol(done.stdout).items() if k in ids}
        done = _run(["sacct", "-X", "-n", "-P", f"--jobs={','.join(ids)}",
                     "--format=JobIDRaw,State,ExitCode,ElapsedRaw,TimelimitRaw"], self.runner)
        if done.returncode != 0:
            return None
        infos = parse_sacct(done.stdout)
        waiting = [i for i, info in infos.items() if info.state in PENDING]
        if waiting:  # sacct knows no pending reason; squeue does
            self.calls += 1
            reasons = _run(["squeue", "--noheader", f"--jobs={','.join(waiting)}", "--format=%i|%r"], self.runner)
            for line in reasons.stdout.splitlines():
                job_id, _, reason = line.partition("|")
                if job_id.strip() in infos:
                    infos[job_id.strip()].reason = reason.strip()
        return infos


def _head(reason: str) -> str:
    return re.split(r"[,\s(]", reason.strip(), maxsplit=1)[0]


def never_clears(reason: str) -> bool:
    """Is the pending reason one that waiting cannot clear? (squeue may spell `a_b` as `a b`.)"""
    if reason.strip().replace(" ", "_").startswith("job_requeued_in_held_state"):
        return True
    return _head(reason) in NEVER_CLEARS


def _token(job: Job) -> str:
    if job.state in FINISHED:
        return f"{job.state} {job.exit_code} in {job.elapsed_s} s"
    short = SHORT.get(job.state, job.state)
    return f"{short} ({job.reason})" if job.state in PENDING and job.reason not in ("", "None") else short


def wait(jobs: list[Job], *, time_margin_s: int = 120, pending_limit_s: int = 3600, poller: Poller | None = None,
         log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep,
         first_delay_s: float = 1.0, max_delay_s: float = 30.0) -> None:
    """Poll until every job has finished or been given up on; print a line at every change of state.

    The pause between polls starts at first_delay_s and grows by 5 % of the time since the last change of any
    job's state, up to max_delay_s: a verdict arrives at most ~5 % (never more than max_delay_s) after the job
    ends, while a day-long job costs Slurm only one query every max_delay_s.
    """
    poller = poller or Poller()
    last_change = time.monotonic()
    while True:
        active = [job for job in jobs if not job.done]
        if not active:
            return
        infos = poller.poll([job.job_id for job in active])
        changed = False
        for job in active:
            info = (infos or {}).get(job.job_id)
            if info is None:
                if infos is not None and (job.history or time.monotonic() - job.submitted_at > LOST_AFTER_S):
                    job.lost, job.given_up = True, "Slurm has no record of the job (purged or never arrived)"
                    log(f"{job.name} {job.job_id} lost: {job.given_up}")
                continue
            job.exit_code, job.elapsed_s = info.exit_code, info.elapsed_s
            job.time_limit_s = info.time_limit_s or job.time_limit_s
            if (info.state, info.reason) != (job.state, job.reason):
                if info.state in PENDING and job.state not in PENDING:
                    job.pending_since = time.monotonic()
                    if job.state not in ("SUBMITTED", ""):  # it had left the queue: Slurm put it back
                        job.requeues += 1
                if info.reason != job.reason:
                    job.reason_since = time.monotonic()
                job.state, job.reason = info.state, info.reason
                token = _token(job)
                if not job.history or job.history[-1] != token:
                    job.history.append(token)
                    log(job.line())
                changed = True
            if job.cancelled_at is not None or job.state in FINISHED:
                continue
            why = _give_up(job, time_margin_s, pending_limit_s)
            if why:
                job.given_up = why
                job.cancelled_at = time.monotonic()
                _run(["scancel", job.job_id], poller.runner)
                log(f"{job.name} {job.job_id} cancelled: {why}")
        now = time.monotonic()
        if changed:
            last_change = now
        if any(not job.done for job in jobs):
            sleep(min(first_delay_s + BACKOFF * (now - last_change), max_delay_s))


def _give_up(job: Job, time_margin_s: int, pending_limit_s: int) -> str:
    """Why waiting longer for this job is pointless, or "" to keep waiting."""
    if job.state in PENDING:
        if job.requeues > MAX_REQUEUES:
            return f"requeued {job.requeues} times (node failures or preemption): giving up"
        if job.state == "REQUEUE_HOLD" or job.reason.replace(" ", "_").startswith("job_requeued_in_held_state"):
            return ("held after a requeue: it would stay in the queue until someone runs "
                    f"`scontrol release {job.job_id}`")
        if never_clears(job.reason):
            return f"pending for a reason that will not clear: {job.reason}"
        patience = SLOW_TO_CLEAR_S.get(_head(job.reason))
        standing = time.monotonic() - (job.reason_since or job.submitted_at)
        if patience is not None and standing > patience:
            return f"pending for {standing:.0f} s on a reason that did not clear: {job.reason}"
        waited = time.monotonic() - (job.pending_since or job.submitted_at)
        if waited > pending_limit_s:
            return f"still pending after {waited:.0f} s (limit {pending_limit_s} s): {job.reason}"
    elif job.time_limit_s is not None and job.elapsed_s > job.time_limit_s + time_margin_s:
        return f"ran {job.elapsed_s} s, past its time limit of {job.time_limit_s} s plus {time_margin_s} s"
    return ""


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a job's output or error file ("" when there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
