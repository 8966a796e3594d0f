"""Talk to Slurm: submit a batch script, poll many jobs in one call, decide when to give up, cancel.

Modelled on ReFrame's Slurm scheduler: states as named sets, one poll for every job with a decaying
poll rate, pending reasons that will never clear cancel the job, and every job can be found again by
the run label in its comment, `<name>-<run tag>` (so a retried submission never makes a duplicate, and a cancel
never misses one); the job keeps the name its batch script gives it, as when a student submits it.

The harness's one Slurm client: submitting, polling, cancelling, pinging the controller and listing the queue
go through here (the harness, the local-cluster fixture, bench and the tests), and only here are Slurm's
commands run.
"""
from __future__ import annotations

import dataclasses
import getpass
import re
import shutil
import signal
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


def killed_by(exit_code: str) -> str:
    """The meaning of a FAILED job's exit code `0:<signal>`: its batch shell died of that signal ("" if none)."""
    after = exit_code.partition(":")[2]
    number = int(after) if after.isdigit() else 0
    if not number:
        return ""
    if number not in signal.valid_signals():
        return f"the batch shell was killed by signal {number}"
    name = signal.Signals(number).name.removeprefix("SIG")
    if number == signal.SIGKILL:
        return "the batch shell was killed by SIGKILL"
    return (f"the batch shell was killed by SIG{name}, a signal it does not trap: Slurm sends it before the time "
            f"limit where the script asks (--signal=B:{name}@<seconds>), and without `trap <function> {name}` the "
            "job ends there; Slurm then stops its programs (SIGTERM, SIGKILL seconds later), and what they have not "
            "saved is lost")


def end_problems(job: Job, subject: str) -> list[str]:
    """What is wrong with how a job (`subject`: "the job", "the follow-up job 42") ended: cancelled by the harness,
    or not COMPLETED with exit code 0, each in one line that says what the state means (for a batch shell killed
    by a signal: which, and why a trap matters)."""
    problems = [f"{subject} was cancelled by the harness: {job.given_up}"] if job.given_up else []
    if job.state != "COMPLETED" or job.exit_code not in ("0:0", "0"):
        meaning = (job.state == "FAILED" and killed_by(job.exit_code)) or STATE_MEANING.get(job.state, "")
        problems.append(f"{subject} ended {job.state} with exit code {job.exit_code or '?'}"
                        + (f": {meaning}" if meaning else "") + (f" ({job.cause})" if job.cause else ""))
    return problems


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
CANCEL_GRACE_S = 60  # a job the harness cancelled counts as done this long after, even if Slurm never says so


class SlurmError(RuntimeError):
    """A Slurm problem the user must fix; the message is one line."""


@dataclass(kw_only=True)
class Status:
    """A job's status as Slurm gives it: its state, exit code and seconds run. Keyword-only, so that the records
    built on it (JobInfo, Job, harness/cluster_run.py's Verdict) keep their own first fields first."""
    state: str
    exit_code: str = ""
    elapsed_s: int = 0


@dataclass(kw_only=True)
class JobInfo(Status):
    """One poll's view of a job."""
    reason: str = ""
    time_limit_s: int | None = None
    nodes: str = ""  # where it runs or ran (Slurm's node list)


@dataclass
class Job(JobInfo):
    """A submitted job and what the harness has seen of it: Slurm's latest view (the JobInfo fields, which wait()
    keeps up to date) and the harness's own notes."""
    name: str  # what it is for: the cluster job's name
    job_id: str
    label: str = ""  # the run label in its comment: name plus run tag (`run_label`)
    submitted_at: float | None = None  # on wait()'s clock; None: when wait() first looks at it
    state: str = field(default="SUBMITTED", kw_only=True)
    history: list[str] = field(default_factory=list)
    given_up: str = ""  # why the harness cancelled it, if it did
    cancelled_at: float | None = None
    lost: bool = False  # Slurm no longer (or never) knew it
    requeues: int = 0  # times it went back to the queue after it had started
    reason_since: float | None = None  # when its pending reason last changed
    pending_since: float | None = None  # when it (last) entered the queue: a requeue starts the wait anew
    cause: str = ""  # for NODE_FAIL: what Slurm says happened to its node(s)
    requeues_itself: bool = False  # its script requeues it (scontrol requeue): no limit on its requeues

    def done(self, now: float) -> bool:
        """Finished, lost, or cancelled by the harness more than CANCEL_GRACE_S ago (it may never confirm)."""
        return self.state in FINISHED or self.lost or (self.cancelled_at is not None and
                                                       now - self.cancelled_at > CANCEL_GRACE_S)

    def line(self) -> str:
        return f"{self.name} {self.job_id} {' -> '.join(self.history)}"


Runner = Callable[..., subprocess.CompletedProcess]


def _run(argv: list[str], runner: Runner = subprocess.run) -> subprocess.CompletedProcess:
    try:
        return runner(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:  # Slurm is not installed here: an answer like the shell's
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 1, "", f"Socket timed out: `{' '.join(argv[:2])}` gave no answer")


def require_sbatch() -> str:
    path = shutil.which("sbatch")
    if path is None:
        raise SlurmError("`--cluster` needs Slurm (sbatch not found)")
    return path


def run_label(name: str, tag: str) -> str:
    """What a job of run `tag` carries as its comment (`sbatch --comment`): `<name>-<tag>`."""
    return f"{name}-{tag}"


def find_by_label(label: str, runner: Runner = subprocess.run) -> list[str] | None:
    """Ids of this user's jobs labelled `label`, in any state the controller still remembers (None: no answer)."""
    listing = queue(runner, states="all")
    return None if listing is None else [entry["id"] for entry in listing if entry["comment"] == label]


# --- the controller: is it up, what is queued, cancel, requeue --------------------------------------------------------

def ping(runner: Runner = subprocess.run) -> bool:
    """Does the Slurm controller answer? (`scontrol ping`; False where Slurm is not installed.)"""
    return "is UP" in _run(["scontrol", "ping"], runner).stdout


QUEUE_FIELDS = {"id": "%i", "name": "%j", "state": "%T", "reason": "%r", "user": "%u", "comment": "%k"}


def queue(runner: Runner = subprocess.run, *, user: str | None = "", states: str = "") -> list[dict[str, str]] | None:
    """squeue as records {id, name, state, reason, user, comment}: this user's jobs (user="": the caller; None:
    everyone's); `states="all"` adds those that ended lately (within MinJobAge). None when the controller does not
    answer."""
    argv = ["squeue", "--noheader", f"--format={'|'.join(QUEUE_FIELDS.values())}"]
    if user is not None:
        argv.append(f"--user={user or getpass.getuser()}")
    if states:
        argv.append(f"--states={states}")
    done = _run(argv, runner)
    if done.returncode != 0:
        return None
    return [dict(zip(QUEUE_FIELDS, line.split("|", len(QUEUE_FIELDS) - 1)))
            for line in done.stdout.splitlines() if line.count("|") >= len(QUEUE_FIELDS) - 1]


def listing(args: Iterable[str], runner: Runner = subprocess.run) -> str:
    """`squeue ARGS` as Slurm prints it, for people to read (the book's pictures); "" without an answer."""
    return _run(["squeue", *args], runner).stdout


def tagged(tag: str, runner: Runner = subprocess.run, user: str | None = "") -> list[str]:
    """Ids of the queued or running jobs of run `tag`: their comments end in `-<tag>` (see `run_label`)."""
    return [entry["id"] for entry in queue(runner, user=user) or [] if entry["comment"].endswith(f"-{tag}")]


def scancel(ids: Iterable[str], runner: Runner = subprocess.run) -> None:
    """Cancel these jobs (those already gone are no error)."""
    ids = list(ids)
    if ids:
        _run(["scancel", *ids], runner)


def requeue(job_id: str, runner: Runner = subprocess.run) -> subprocess.CompletedProcess:
    """Put a job back into the queue (`scontrol requeue`), as an administrator or a failed node does."""
    return _run(["scontrol", "requeue", job_id], runner)


def in_job(job_id: str, command: list[str], runner: Runner = subprocess.run) -> subprocess.CompletedProcess:
    """Run `command` as one more step of a running job, beside its steps (`srun --overlap --jobid`): how a user
    looks at a job's node, e.g. with nvidia-smi."""
    return _run(["srun", "--overlap", "--jobid", job_id, *command], runner)


def hostnames(nodelist: str, runner: Runner = subprocess.run) -> list[str]:
    """`dc[01-02]` -> ["dc01", "dc02"] (`scontrol show hostnames`)."""
    if not nodelist or nodelist in ("(null)", "None"):
        return []
    return _run(["scontrol", "show", "hostnames", nodelist], runner).stdout.split()


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
           tries: int = 3, runner: Runner = subprocess.run, pause_s: float = 2.0, exclude: Iterable[str] = ()) -> Job:
    """`sbatch --parsable` the script; a transient error is retried only if the job did not arrive. `exclude`: ids
    of jobs of the same label submitted before (a chain of follow-ups), which are not this one."""
    exclude = set(exclude)
    results.mkdir(parents=True, exist_ok=True)
    label = run_label(name, tag)
    argv = [f"--comment={label}", f"--chdir={chdir}", f"--output={results}/output.%j",
            f"--error={results}/error.%j"]
    argv += (site.sbatch_options(name) if site is not None else []) + list(options) + [str(script)] + list(args)
    for attempt in range(1, tries + 1):
        done = run_sbatch(argv, env=env, runner=runner)
        job_id = job_id_of(done)
        if job_id:
            return Job(name=name, job_id=job_id, label=label)
        message = (done.stderr or done.stdout).strip()
        if not any(sign.lower() in message.lower() for sign in TRANSIENT):
            raise SlurmError(_refusal(message, site))
        for _ in range(tries):  # the controller may have taken the job before the answer got lost
            arrived = find_by_label(label, runner)
            if arrived is not None:
                arrived = [job_id for job_id in arrived if job_id not in exclude]
                break
            time.sleep(pause_s)
        if arrived:
            return Job(name=name, job_id=arrived[0], label=label)
        if arrived is None:  # retrying blindly could submit the job twice
            raise SlurmError(f"sbatch failed ({message.splitlines()[-1]}) and Slurm cannot say whether job "
                             f"{label} arrived: look for the comment {label} in `squeue --me --format='%i %j %k'`")
        if attempt < tries:
            time.sleep(pause_s * attempt)
    raise SlurmError(f"sbatch failed {tries} times with transient errors, last: {message.splitlines()[-1]}")


TAG = r"\d{4}-\d{6}-[0-9a-f]{4}"  # a run tag: month, day, time, four hex digits (harness/cluster_run.new_tag)


@dataclass(frozen=True)
class Orphan:
    """A job of an earlier harness run that is still in the queue."""
    job_id: str
    label: str
    state: str


def orphans(names: Iterable[str], tag: str = "", runner: Runner = subprocess.run) -> list[Orphan]:
    """This user's queued or running jobs labelled `<name>-<run tag>` for a course job `name`, from runs other than
    `tag`: what a harness killed with SIGKILL, or by a lost login session, left behind."""
    pattern = re.compile(rf"^(?:{'|'.join(map(re.escape, names))})-({TAG})$")
    return [Orphan(entry["id"], entry["comment"], entry["state"]) for entry in queue(runner) or []
            if (match := pattern.match(entry["comment"])) and match[1] != tag]


def cancel(jobs: Iterable[Job], tag: str | None = None, runner: Runner = subprocess.run) -> list[str]:
    """scancel by id, then by run tag as a backstop (jobs submitted but never recorded). Returns the ids."""
    ids = [job.job_id for job in jobs if job.state not in FINISHED]
    if tag:
        ids += [job_id for job_id in tagged(tag, runner) if job_id not in ids]
    scancel(ids, runner)
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


SCONTROL_JOB = ["scontrol", "--oneliner", "show", "job"]  # + an id for one job; without: every job
SCONTROL_NODE = ["scontrol", "--oneliner", "show", "node"]
SACCT_FIELDS = "JobIDRaw,State,ExitCode,ElapsedRaw,TimelimitRaw,NodeList"


def sacct_argv(ids: Iterable[str]) -> list[str]:
    """The poller's accounting query: one line per job (-X: the allocation, not its steps)."""
    return ["sacct", "-X", "-n", "-P", f"--jobs={','.join(ids)}", f"--format={SACCT_FIELDS}"]


def controller_argv(ids: Iterable[str]) -> list[str]:
    """The poller's question to the controller: state and pending reason of jobs not finished in accounting."""
    return ["squeue", "--noheader", "--states=all", f"--jobs={','.join(ids)}", "--format=%i|%T|%r"]


def _nodes(text: str) -> str:
    return "" if text.strip() in ("", "None assigned", "(null)") else text.strip()


def _state(text: str) -> str:
    """A job state's first word (sacct says `CANCELLED by 1000`); UNKNOWN where Slurm gives none."""
    return (text.split() or ["UNKNOWN"])[0]


def _minutes(text: str) -> int | None:
    """sacct's TimelimitRaw (whole minutes) in seconds; None for UNLIMITED and the like."""
    return int(text.strip()) * 60 if text.strip().isdigit() else None


# How the two full listings give JobInfo's fields: JobInfo field -> (the listing's key, how its text reads; a key a
# record lacks reads as ""). scontrol's durations are [D-]HH:MM:SS and it says `Reason=None` where there is none;
# sacct's raw fields are whole seconds (ElapsedRaw) and whole minutes (TimelimitRaw).
SCONTROL_COLUMNS = {"state": ("JobState", _state), "reason": ("Reason", str), "exit_code": ("ExitCode", str),
                    "elapsed_s": ("RunTime", lambda text: seconds(text) or 0), "time_limit_s": ("TimeLimit", seconds),
                    "nodes": ("NodeList", _nodes)}
SACCT_COLUMNS = {"state": ("State", _state), "exit_code": ("ExitCode", str),
                 "elapsed_s": ("ElapsedRaw", lambda text: int(text or 0)), "time_limit_s": ("TimelimitRaw", _minutes),
                 "nodes": ("NodeList", _nodes)}


def _job_infos(records: Iterable[dict[str, str]], id_key: str, columns: dict) -> dict[str, JobInfo]:
    """One JobInfo per record that has a job id (`id_key`), its fields read as `columns` says."""
    return {record[id_key]: JobInfo(**{name: read(record.get(key, "")) for name, (key, read) in columns.items()})
            for record in records if id_key in record}


def parse_scontrol(text: str) -> dict[str, JobInfo]:
    """`scontrol --oneliner show job` output -> JobInfo per job id."""
    return _job_infos(({"Reason": "None", **record_fields(line)} for line in text.splitlines()), "JobId",
                      SCONTROL_COLUMNS)


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """`sacct -X -n -P -o JobIDRaw,State,ExitCode,ElapsedRaw,TimelimitRaw[,NodeList]` -> JobInfo per job id."""
    columns = SACCT_FIELDS.split(",")
    return _job_infos((dict(zip(columns, line.split("|"))) for line in text.splitlines() if line.count("|") >= 4),
                      "JobIDRaw", SACCT_COLUMNS)


def parse_controller(text: str) -> dict[str, JobInfo]:
    """`squeue --format=%i|%T|%r` (controller_argv) -> JobInfo (state and reason only) per job id."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3 and parts[0]:
            jobs[parts[0]] = JobInfo(state=parts[1], reason=parts[2])
    return jobs


def runs_argv(job_id: str) -> list[str]:
    """Every run of one job: a requeued job keeps its id, and only `--duplicates` shows its earlier runs."""
    return ["sacct", "--duplicates", "-X", "-n", "-P", f"--jobs={job_id}", f"--format={SACCT_FIELDS},Start,End"]


def parse_runs(text: str) -> list[tuple[JobInfo, str, str]]:
    """`runs_argv`'s answer -> (JobInfo, start, end) per run, oldest first (sacct lists them in that order)."""
    runs = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 8:
            info = parse_sacct("|".join(parts[:6]))
            runs += [(value, parts[6], parts[7]) for value in info.values()]
    return runs


def runs(job_id: str, runner: Runner = subprocess.run) -> list[tuple[JobInfo, str, str]]:
    """The accounting history of a job, one entry per run ([] where sacct has none)."""
    done = _run(runs_argv(job_id), runner)
    return parse_runs(done.stdout) if done.returncode == 0 else []


def accounting(job_id: str, fields: Iterable[str], runner: Runner = subprocess.run) -> dict[str, str]:
    """The accounting record of a job's allocation: {field: value} (`sacct -X`); {} when sacct has none."""
    fields = list(fields)
    done = _run(["sacct", "-X", "-n", "-P", f"--jobs={job_id}", f"--format={','.join(fields)}"], runner)
    lines = done.stdout.splitlines() if done.returncode == 0 else []
    return dict(zip(fields, lines[0].split("|"))) if lines else {}


def account_users(account: str, runner: Runner = subprocess.run) -> list[str]:
    """The users the accounting database lets charge `account` (`sacctmgr show associations`)."""
    done = _run(["sacctmgr", "-n", "-P", "show", "associations", f"account={account}", "format=user"], runner)
    return [user for user in done.stdout.split() if user]


def accounting_enabled(runner: Runner = subprocess.run) -> bool:
    """Is there a slurmdbd behind sacct? (Without one, sacct only says that accounting is disabled.)"""
    config = _run(["scontrol", "show", "config"], runner).stdout
    match = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config, re.MULTILINE)
    return bool(match) and not match[1].endswith("/none")


def _last_line(done: subprocess.CompletedProcess) -> str:
    text = (done.stderr or done.stdout).strip()
    return text.splitlines()[-1] if text else f"exit status {done.returncode}"


# Final in accounting, yet Slurm may requeue the job (a requeueable job on a failed node, a preempted one):
# sacct keeps showing the old allocation's end while the controller has the job back in the queue
REQUEUE_PRONE = frozenset({"NODE_FAIL", "PREEMPTED"})


class Poller:
    """One Slurm call for all jobs: sacct where accounting exists, else `scontrol show job`.

    Accounting (slurmdbd) is a second service. It records a job's start and end a moment after the controller
    (recorded here: sacct says PENDING for a job the controller runs), knows no pending job until it is eligible,
    and can be down while the controller runs. So sacct answers first, and the controller (one squeue call) has
    the latest word on every job that accounting does not show finished, or shows finished in a state Slurm may
    requeue from; a job the controller has seen end is judged by its record (scontrol) at once. While sacct fails,
    the jobs are followed with scontrol alone. Each such event is one line in `notes` (wait() prints them): sacct
    failing and answering again, the first end judged ahead of accounting, the controller not answering and
    answering again.
    """

    def __init__(self, use_sacct: bool | None = None, runner: Runner = subprocess.run):
        self.runner = runner
        self.use_sacct = accounting_enabled(runner) if use_sacct is None else use_sacct
        self.calls = 0
        self.notes: list[str] = []
        self._trouble: dict[str, str] = {}  # "accounting" / "controller" -> what is wrong now
        self._ahead_noted = False

    def _say(self, part: str, problem: str) -> None:
        """Note a change of `part` being in trouble (problem) or fine again (problem="")."""
        if bool(problem) == bool(self._trouble.get(part, "")):
            return
        self._trouble[part] = problem
        self.notes.append(problem or ("accounting (sacct) answers again: polling with sacct" if part == "accounting"
                                      else "the Slurm controller answers again"))

    def _controller(self, ids: list[str]) -> dict[str, JobInfo] | None:
        """scontrol's records of `ids` (one id: that job; more: every job, filtered); None: no answer."""
        self.calls += 1
        done = _run([*SCONTROL_JOB, *ids[:1]] if len(ids) == 1 else SCONTROL_JOB, self.runner)
        said = done.stdout + done.stderr
        if done.returncode != 0 and "No jobs in the system" not in said and "Invalid job id" not in said:
            self._say("controller", f"the Slurm controller does not answer ({_last_line(done)}): still waiting")
            return None
        self._say("controller", "")
        return {k: v for k, v in parse_scontrol(done.stdout).items() if k in ids}

    def poll(self, ids: list[str]) -> dict[str, JobInfo] | None:
        """The jobs Slurm knows among `ids`; None when Slurm did not answer (try again later)."""
        if not self.use_sacct:
            return self._controller(ids)
        self.calls += 1
        done = _run(sacct_argv(ids), self.runner)
        if done.returncode != 0:
            self._say("accounting", f"accounting (sacct) does not answer ({_last_line(done)}): following the "
                                    f"jobs with scontrol until it is back")
            return self._controller(ids)
        self._say("accounting", "")
        infos = parse_sacct(done.stdout)
        ask = [i for i in ids if i not in infos or infos[i].state not in FINISHED or infos[i].state in REQUEUE_PRONE]
        if not ask:
            return infos
        self.calls += 1
        asked = _run(controller_argv(ask), self.runner)
        if asked.returncode != 0 and "Invalid job id" not in asked.stderr:
            self._say("controller", f"the Slurm controller does not answer ({_last_line(asked)}): still waiting")
            return infos if all(i in infos for i in ask) else None
        self._say("controller", "")
        view = parse_controller(asked.stdout)
        ended = []
        for job_id in ask:
            seen, known = view.get(job_id), infos.get(job_id)
            if seen is None:  # the controller has forgotten it (MinJobAge): accounting's word stands
                continue
            if seen.state in FINISHED:
                if known is None or known.state != seen.state:
                    ended.append(job_id)
            else:
                infos[job_id] = dataclasses.replace(known, state=seen.state, reason=seen.reason) if known else seen
        if not ended:
            return infos
        records = self._controller(ended)
        if records is None:
            return None
        if not self._ahead_noted:
            self._ahead_noted = True
            first = ended[0]
            self.notes.append(f"accounting (sacct) has not recorded yet that job {first} ended "
                              f"({records[first].state if first in records else 'gone'}): judged by the "
                              f"controller's record (scontrol)")
        infos.update(records)
        return infos


def node_failure_cause(job_id: str, nodes: str, runner: Runner = subprocess.run) -> str:
    """Why a NODE_FAIL job ended, as Slurm tells it: the job's reason and its nodes' state and reason (a node an
    administrator or slurmd's timeout took down keeps its reason; one that came back at once has none)."""
    record = (show("job", job_id, runner) or [{}])[0]
    nodes = nodes or _nodes(record.get("NodeList", ""))
    causes = [record["Reason"]] if record.get("Reason", "None") not in ("", "None") else []
    for name in hostnames(nodes, runner):
        node = (show("node", name, runner) or [{}])[0]
        if node.get("Reason", "") not in ("", "none", "None"):
            causes.append(f"{name} {node.get('State', '')}: {node['Reason']}")
    return f"on {nodes or 'its node'}: " + ("; ".join(causes) or "Slurm gives no reason")


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
         clock: Callable[[], float] = time.monotonic, first_delay_s: float = 1.0, max_delay_s: float = 30.0) -> None:
    """Poll until every job has finished or been given up on; print a line at every change of state.

    The pause between polls starts at first_delay_s and grows by 5 % of the time since the last change of any
    job's state, up to max_delay_s: a verdict arrives at most ~5 % (never more than max_delay_s) after the job
    ends, while a day-long job costs Slurm only one query every max_delay_s. `sleep` and `clock` are the
    pause and the time (time.monotonic): tests drive the whole state machine with recorded outputs and a fake
    clock (tests/test_slurm_states.py).
    """
    poller = poller or Poller()
    last_change = clock()
    for job in jobs:
        job.submitted_at = clock() if job.submitted_at is None else job.submitted_at
    while True:
        active = [job for job in jobs if not job.done(clock())]
        if not active:
            return
        infos = poller.poll([job.job_id for job in active])
        for note in poller.notes:
            log(note)
        poller.notes.clear()
        changed = False
        for job in active:
            info = (infos or {}).get(job.job_id)
            now = clock()
            if info is None:
                if infos is not None and (job.history or now - job.submitted_at > LOST_AFTER_S):
                    job.lost, job.given_up = True, "Slurm has no record of the job (purged or never arrived)"
                    log(f"{job.name} {job.job_id} lost: {job.given_up}")
                continue
            job.exit_code, job.elapsed_s = info.exit_code, info.elapsed_s
            job.time_limit_s = info.time_limit_s or job.time_limit_s
            job.nodes = info.nodes or job.nodes
            if (info.state, info.reason) != (job.state, job.reason):
                if info.state in PENDING and job.state not in PENDING:
                    job.pending_since = now
                    if job.state not in ("SUBMITTED", ""):  # it had left the queue: Slurm put it back
                        job.requeues += 1
                if info.reason != job.reason:
                    job.reason_since = now
                job.state, job.reason = info.state, info.reason
                if job.state == "NODE_FAIL":
                    job.cause = node_failure_cause(job.job_id, job.nodes, poller.runner)
                token = _token(job)
                if not job.history or job.history[-1] != token:
                    job.history.append(token)
                    log(job.line() + (f" ({job.cause})" if job.cause else ""))
                changed = True
            if job.cancelled_at is not None or job.state in FINISHED:
                continue
            why = _give_up(job, time_margin_s, pending_limit_s, now)
            if why:
                job.given_up = why
                job.cancelled_at = now
                scancel([job.job_id], poller.runner)
                log(f"{job.name} {job.job_id} cancelled: {why}")
        now = clock()
        if changed:
            last_change = now
        if any(not job.done(now) for job in jobs):
            sleep(min(first_delay_s + BACKOFF * (now - last_change), max_delay_s))


def _give_up(job: Job, time_margin_s: int, pending_limit_s: int, now: float) -> str:
    """Why waiting longer for this job is pointless, or "" to keep waiting."""
    if job.state in PENDING:
        queued = job.submitted_at if job.submitted_at is not None else now
        if job.requeues > MAX_REQUEUES and not job.requeues_itself:
            return f"requeued {job.requeues} times (node failures or preemption): giving up"
        if job.state == "REQUEUE_HOLD" or job.reason.replace(" ", "_").startswith("job_requeued_in_held_state"):
            return ("held after a requeue: it would stay in the queue until someone runs "
                    f"`scontrol release {job.job_id}`")
        if never_clears(job.reason):
            return f"pending for a reason that will not clear: {job.reason}"
        if _head(job.reason) == "Dependency":  # a follow-up waits for the job before it, which is followed itself:
            job.pending_since = now  # its wait for the queue starts when that one has ended
            return ""
        patience = SLOW_TO_CLEAR_S.get(_head(job.reason))
        standing = now - (job.reason_since or queued)
        if patience is not None and standing > patience:
            return f"pending for {standing:.0f} s on a reason that did not clear: {job.reason}"
        waited = now - (job.pending_since or queued)
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
