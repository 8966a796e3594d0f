"""The student's path through day 1: the book's commands, in the book's order, typed into one real bash, on the
login node of the local Slurm cluster as the course user, in the course user's real home: a file system of at most
330 files (JSC's 11,000, scaled to the stand-ins: slurm/local-cluster/start.sh). And the same book on a laptop.

Which commands: before-the-course's step 7 ("Where your files go": `jutil env activate -p training2441`, the folders
in $PROJECT and $SCRATCH, the clone, the `~/course` link, `jutil user dataquota`), then those of the {exercise} and
{solution} blocks of the matrix, venv and cats lessons, in page order (`harness.bookcommands.student_steps`;
`test_the_walk_takes_the_exercise_commands_of_the_day_one_lessons` pins the list against the real pages), and the
"Check your work" boxes of the matrix and cats lessons (`python -m pytest --target exercises -k ...`, in the course
folder, with the course venv active: the matrix box after the venv lesson, as the venv brings pytest on JURECA).
The lessons' console blocks show the same commands with example output, plus demonstrations that are not steps
(`scancel 412169`; a cat job submitted before the prefetch, which hangs without internet on JURECA). Not walked on
the cluster: the modules lesson (`module spider`/`torchvision` need JSC's real module tree), the TensorBoard lesson
(a laptop, an SSH tunnel and a server that runs until Ctrl+C: tests/test_tunnel.py proves it), and the login lesson
(`ssh jureca`).

    book/matrix.md  cd ~/course/exercises · module load Stages/2024 · module load GCC OpenMPI PyTorch ·
                    python matrix.py · cd ~/course/exercises · sbatch ../slurm/jureca-matrix.sbatch · squeue --me · cat output.<id> ·
                    cat error.<id> · SIZE=4096 sbatch ../slurm/jureca-matrix.sbatch
    book/venv.md    cd ~/course · bash venv-template/setup.sh · source venv-template/activate.sh ·
                    python -c "import fastai, torch; print(fastai.__version__, torch.__file__)"
    book/cats.md    cd ~/course/exercises · source ../venv-template/activate.sh · python cats.py --prefetch ·
                    cd ~/course/exercises · sbatch ../slurm/fastai.sbatch · watch squeue --me · cat output.<jobid> ·
                    ls models runs · EPOCHS=1 sbatch ../slurm/fastai.sbatch

The adaptations, and no others:

1. `git clone ... $PROJECT/$USER/course` is a scratch copy of this course (copy_course) where the clone would go,
   with the exercises done: the files of solutions/ copied over those of exercises/ (exercises/matrix.py itself
   raises NotImplementedError until the student fills it in). The login's `$PROJECT_training2441` and
   `$SCRATCH_training2441` are folders of the test's tmp_path (each walk its own); `jutil env activate` exports
   them as $PROJECT and $SCRATCH.
2. What a JURECA login shell has already: the shell sources Lmod's `init/bash`, runs local.toml's `export
   MODULEPATH=...` line (the local cluster's JSC-like tree) and sources start.sh's stand-in of JSC's `jutil`
   (`env activate -p` and `user dataquota` only; $STATE/etc/jutil.sh).
3. `sbatch` is a small wrapper that puts local.toml's command-line options for the job
   (`site.sbatch_options(job)`: --partition, --cpus-per-task=2, 1 for the matrix job, as the local nodes have 2
   cores and not 128, --account, --reservation) in front of the student's arguments, as `pytest --cluster` does.
   It is first on PATH and, because loading the local tree's Python module puts /usr/bin (where Slurm's own sbatch
   is) in front of PATH, the shell also gets a function `sbatch` that calls it. Each job's `NumCPUs` proves it.
4. `<id>`, `<jobid>` and the pages' example job ids (412169) become the id of the job just submitted.
5. `watch squeue --me` becomes one `squeue --me`; after it, and after a plain `squeue --me` (the solution follows
   the job "PD, then R, then gone"), the walk waits until the submitted jobs have left the queue. At the end of each
   lesson it waits for the lesson's jobs, as a student reads their output before going on.
6. The data set and the weights are stand-ins (harness.minipets, seeded into a scratch folder), copied just before
   `python cats.py --prefetch` to where the student's shell sends downloads
   (`cp -r ... "${FASTAI_HOME:-$HOME/.fastai}"`, the same for TORCH_HOME): this machine has no internet. The prefetch still runs, and must succeed, on the
   "login node".
7. `export EPOCHS=2 SIZE=32` in the shell before the cats lesson (the knobs cats.py reads; sbatch passes the
   environment on): a short CPU run.
8. Each lesson starts in `~/course/exercises`, where the book tells the student to work ("Then work in
   ~/course/exercises", matrix lesson) and where the course checker starts every page (harness.coursecheck.WORK).
9. A "Check your work" box starts with `cd ~/course`: the box says "in the course folder".

A failing command fails the test with its page, line, command and output; a job that does not complete with its
state and the end of its output and error files. The whole walk is kept in `walk.log` in the test's tmp_path.
The home's limit is proven both ways: the walk ends with `jutil user dataquota` below the soft limit, and
`test_caches_kept_in_the_home_overflow_its_file_limit` fails the same steps on a copy whose venv leaves the caches
in the home.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

import pytest

from harness import sites
from harness.coursecheck import WORK
from harness.bookcommands import (Command, Step, block_commands, check_commands, example_job_ids, student_steps,
                                  with_job_id)
from harness.course_copy import copy_course
from harness.localcluster import LocalCluster, submit_env
from harness.requires import require
from harness.slurm import tail

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("book/matrix.md", "book/venv.md", "book/cats.md")
SETUP_PAGE, SETUP_MARK = "book/before-the-course.md", "jutil env activate"  # step 7: where the files go
# The "Check your work" boxes typed on the login node, after the lesson where the course venv is active: the matrix
# box after the venv lesson (its `python -m pytest` needs the venv on JURECA), the cats box after the cats lesson
CHECKS_AFTER = {"book/venv.md": "book/matrix.md", "book/cats.md": "book/cats.md"}
STATE = Path(os.environ.get("COURSE_SLURM_STATE", "/tmp/course-slurm"))
JUTIL = STATE / "etc" / "jutil.sh"  # start.sh's stand-in of JSC's login environment (jutil, $PROJECT_<project>)
PROJECT_VARS = ("PROJECT_training2441", "SCRATCH_training2441")
HOME_LOCK = Path("/tmp/course-home.lock")  # the walks that use the course user's one home take turns
KNOBS = {"book/cats.md": {"EPOCHS": "2", "SIZE": "32"}}  # exported before the lesson (adaptation 7)
LMOD_INIT = Path("/usr/share/lmod/lmod/init/bash")
STEP_TIMEOUT_S = 600  # one command (setup.sh and the prefetch are the slow ones)
JOB_TIMEOUT_S = 900  # one job, queue included
EPOCH_LINE = re.compile(r"^(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+:\d+\s*$", re.MULTILINE)
# Variables of the test's own process that a student's login shell does not have
NOT_THE_STUDENTS = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FASTAI_HOME", "TORCH_HOME", "XDG_CACHE_HOME",
                    "COURSE_VENV", "EPOCHS", "SIZE", "OLDPWD", "PWD", "CUDA_VISIBLE_DEVICES", "CI", "HF_HOME",
                    "PIP_CACHE_DIR", "PROJECT", "SCRATCH", *PROJECT_VARS)
NOT_THE_STUDENTS_PREFIXES = ("SLURM_", "SRUN_", "SBATCH_", "PYTEST_", "LMOD", "__LMOD", "CONDA")


def test_the_walk_takes_the_exercise_commands_of_the_day_one_lessons():
    """What the student's walk runs, picked from the real pages: the list in this module's docstring."""
    walked = {page: [(step.run.split("#")[0].strip(), step.submits, step.waits) for step in student_steps(ROOT / page)]
              for page in PAGES}
    assert walked == {
        "book/matrix.md": [
            ("cd ~/course/exercises", False, False), ("module load Stages/2024", False, False),
            ("module load GCC OpenMPI PyTorch", False, False), ("python matrix.py", False, False),
            ("cd ~/course/exercises", False, False),
            ("sbatch ../slurm/jureca-matrix.sbatch", True, False), ("squeue --me", False, True),
            ("cat output.<id>", False, False), ("cat error.<id>", False, False),
            ("SIZE=4096 sbatch ../slurm/jureca-matrix.sbatch", True, False)],
        "book/venv.md": [
            ("cd ~/course", False, False), ("bash venv-template/setup.sh", False, False),
            ("source venv-template/activate.sh", False, False),
            ('python -c "import fastai, torch; print(fastai.__version__, torch.__file__)"', False, False)],
        "book/cats.md": [
            ("cd ~/course/exercises", False, False), ("source ../venv-template/activate.sh", False, False),
            ("python cats.py --prefetch", False, False), ("cd ~/course/exercises", False, False),
            ("sbatch ../slurm/fastai.sbatch", True, False), ("squeue --me", False, True),
            ("cat output.<jobid>", False, False), ("ls models runs", False, False),
            ("EPOCHS=1 sbatch ../slurm/fastai.sbatch", True, False)],
    }, "the day-1 exercise commands changed: update this list and the module docstring, then run the walk"
    assert [c.text for c in block_commands(ROOT / SETUP_PAGE, SETUP_MARK)] == [
        "jutil env activate -p training2441", "mkdir -p $PROJECT/$USER",
        "git clone {{ course_repository }} $PROJECT/$USER/course", "ln -sfn $PROJECT/$USER/course ~/course",
        "jutil user dataquota"]
    assert {page: [c.text for c in check_commands(ROOT / page)] for page in CHECKS_AFTER.values()} == {
        "book/matrix.md": ["python -m pytest --target exercises -k matrix"],
        "book/cats.md": ["python -m pytest --target exercises -k cats"]}
    assert with_job_id("cat output.412169", "57", example_job_ids(ROOT / "book/matrix.md")) == "cat output.57"
    assert with_job_id("cat output.<jobid>", "57") == "cat output.57"


class Terminal:
    """One bash, fed a command at a time as a student types them; stdout and stderr together."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                        text=True, bufsize=1, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, text: str, timeout_s: float = STEP_TIMEOUT_S) -> tuple[int | None, str]:
        """Run one command line in the shell (cd, source and exports stay); its exit status (None: it did not end)
        and its output. Its stdin is /dev/null: nothing waits for the keyboard."""
        marker = f"__step_done_{uuid.uuid4().hex}__"
        assert self.process.stdin is not None
        self.process.stdin.write(f"{{ {text}\n}} </dev/null 2>&1\nprintf '\\n{marker} %s\\n' \"$?\"\n")
        self.process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                return None, "".join(output) + f"\n(still running after {timeout_s} s)"
            if line is None:
                return None, "".join(output) + "\n(the shell ended)"
            if line.startswith(marker):
                return int(line.split()[1]), "".join(output)[:-1]  # [:-1]: the newline printf put before it
            output.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def sbatch_wrapper(folder: Path, site: sites.Site, real_sbatch: str) -> Path:
    """An `sbatch` that puts the site's options for the script's job in front of the student's arguments."""
    from harness.exercises import cluster_jobs

    folder.mkdir(parents=True, exist_ok=True)
    cases, seen = [], set()
    for name, (_, job) in cluster_jobs().items():
        if job.sbatch not in seen:
            seen.add(job.sbatch)
            cases.append(f"    {shlex.quote(job.sbatch)}) set -- {shlex.join(site.sbatch_options(name))} \"$@\" ;;")
    wrapper = folder / "sbatch"
    wrapper.write_text("\n".join([
        "#!/bin/bash",
        f"# The site profile's sbatch options ({site.path.name}) before the student's arguments, as pytest --cluster",
        "# gives them: the script's #SBATCH lines stay as the book shows them, the command line overrides them.",
        'script=""',
        'for arg in "$@"; do case $arg in -*) ;; *) script=${arg##*/}; break ;; esac; done',
        'case $script in',
        *cases,
        f"    *) set -- {shlex.join(site.sbatch_options())} \"$@\" ;;",
        "esac",
        f"exec {shlex.quote(real_sbatch)} \"$@\"",
    ]) + "\n")
    wrapper.chmod(0o755)
    return wrapper


def student_env(home: Path, bin_folder: Path) -> dict[str, str]:
    """A login shell's environment: the scratch HOME, no Lmod, no project venv, nothing of the test's own Slurm."""
    env = {name: value for name, value in submit_env().items()
           if name not in NOT_THE_STUDENTS and not name.startswith(NOT_THE_STUDENTS_PREFIXES)}
    path = [p for p in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep)
            if p and not p.startswith(str(ROOT / ".venv"))]
    env.update(HOME=str(home), PATH=os.pathsep.join([str(bin_folder), *path]))
    return env


@dataclass
class Ran:
    page: str
    step: Step | None
    command: str
    status: int | None
    output: str
    seconds: float

    def show(self) -> str:
        where = f"{self.page}:{self.step.command.line}" if self.step else f"{self.page} (set-up)"
        return f"--- {where} ({self.seconds:.1f} s, exit {self.status})\n$ {self.command}\n{self.output}"


@dataclass
class Submitted:
    page: str
    step: Step
    command: str
    job_id: str
    record: dict[str, str] | None = None


class Walk:
    """The student's terminal plus what the walk has seen: every command with its output, every job."""

    def __init__(self, terminal: Terminal, cluster: LocalCluster, exercises: Path, log: Path):
        self.terminal, self.cluster, self.exercises, self.log = terminal, cluster, exercises, log
        self.ran: list[Ran] = []
        self.jobs: list[Submitted] = []

    def type(self, page: str, step: Step | None, command: str) -> Ran:
        start = time.monotonic()
        status, output = self.terminal.run(command)
        ran = Ran(page, step, command, status, output, time.monotonic() - start)
        self.ran.append(ran)
        with self.log.open("a") as log:
            log.write(ran.show() + "\n")
        if status != 0:
            where = f"{page}:{step.command.line}" if step else f"{page} (set-up)"
            pytest.fail(f"{where}: `{command}` failed (exit status {status}):\n{output}\n\n"
                        f"the walk so far: {self.log}", pytrace=False)
        return ran

    def wait(self) -> None:
        """Until every submitted job has left the queue."""
        for job in self.jobs:
            if job.record is not None:
                continue
            try:
                job.record = self.cluster.wait(job.job_id, timeout_s=JOB_TIMEOUT_S)
            except pytest.fail.Exception as failed:
                pytest.fail(f"{job.page}:{job.step.command.line}: the job of `{job.command}` ({job.job_id}) did not "
                            f"finish: {failed}\n{self.files_of(job)}", pytrace=False)
            with self.log.open("a") as log:
                log.write(f"--- job {job.job_id} ({job.command}): {job.record.get('JobState')} "
                          f"{job.record.get('ExitCode')} in {job.record.get('RunTime')}\n")

    def files_of(self, job: Submitted) -> str:
        shown = []
        for name in ("output", "error"):
            text = tail(self.exercises / f"{name}.{job.job_id}") or "(empty)"
            shown.append(f"{name}.{job.job_id} (last lines):\n{text}")
        return "\n".join(shown)

    def output_of(self, command_start: str) -> str:
        return next(r.output for r in self.ran if r.command.startswith(command_start))


@contextlib.contextmanager
def course_home() -> Iterator[tuple[Path, int]]:
    """The course user's real home, the tmpfs with a file limit that start.sh mounts there (JSC's 11,000 files, scaled
    to the stand-ins), and that limit. The walks that use it take turns (a file lock); afterwards the entries they
    make at its top (the ~/course link, caches a broken copy put there) are removed, so the next walk starts as a
    fresh login would."""
    home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    mounted = any(line.split()[:3] == ["course-home", str(home), "tmpfs"]
                  for line in Path("/proc/mounts").read_text().splitlines())
    require(mounted and JUTIL.is_file(), f"the course user's home {home} has no file limit, or {JUTIL} is missing: "
            "run `sudo bash slurm/local-cluster/start.sh` of this version (it mounts the home with JSC's quota)")
    with HOME_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ours = [home / "course", home / ".fastai", home / ".cache" / "torch", home / ".cache" / "pip"]
        there = {path for path in ours if path.exists() or path.is_symlink()}
        try:
            yield home, os.statvfs(home).f_files
        finally:
            for path in ours:
                if path not in there and path.is_symlink():
                    path.unlink()
                elif path not in there and path.exists():
                    shutil.rmtree(path)


def login(walk: "Walk", site: sites.Site, wrapper: Path) -> None:
    """Adaptations 2 and 3: what a JURECA login shell has already (Lmod, the module tree, jutil) and the sbatch
    wrapper."""
    modulepath = [line for line in site.venv_setup if line.startswith("export MODULEPATH=")]
    assert len(modulepath) == 1, f"{site.path} should set MODULEPATH in venv_setup (the local module tree)"
    walk.type("login", None, f"source {LMOD_INIT} && {modulepath[0]} && source {JUTIL}")
    walk.type("login", None, f'sbatch() {{ {shlex.quote(str(wrapper))} "$@"; }}')


def set_up(walk: "Walk", solved: bool = True) -> Path:
    """Step 7 of before-the-course, typed as written, except `git clone`: a copy of this course goes where the clone
    would (adaptation 1), with the exercises done. Returns the course folder (in $PROJECT)."""
    commands = block_commands(ROOT / SETUP_PAGE, SETUP_MARK)
    assert [c.text.split()[0] for c in commands][:4] == ["jutil", "mkdir", "git", "ln"], commands
    course = None
    for command in commands:
        step = Step(command, command.text, submits=False, waits=False)
        if command.text.startswith("git clone "):
            destination = walk.type(SETUP_PAGE, step, f"echo {command.text.split()[-1]}").output.strip()
            course = copy_course(ROOT, Path(destination))
            if solved:
                for program in (course / "solutions").iterdir():
                    if program.is_file():
                        shutil.copy2(program, course / "exercises" / program.name)
            continue
        walk.type(SETUP_PAGE, step, command.text)
    assert course is not None
    return course


@dataclass
class Student:
    """A student logged in on the local cluster's login node, the course set up (`logged_in`)."""
    walk: Walk
    site: sites.Site
    course: Path  # the course folder, in $PROJECT
    folders: dict[str, Path]  # $PROJECT_training2441 and $SCRATCH_training2441 of the login
    home: Path
    home_files_max: int


@contextlib.contextmanager
def logged_in(cluster: LocalCluster, tmp_path: Path) -> Iterator[Student]:
    """A student's login shell on the login node (adaptations 2 and 3) in the course user's home, with the project's
    folders of this walk in tmp_path, after step 7 of before-the-course (adaptation 1). The shell is closed at the
    end, pass or fail, and walk.log says how long the walk took."""
    require(LMOD_INIT.is_file(), f"Lmod is not installed ({LMOD_INIT} missing): sudo bash slurm/local-cluster/start.sh")
    real_sbatch = shutil.which("sbatch")
    assert real_sbatch is not None, "no sbatch on PATH: the walk needs the local cluster's Slurm"
    site = sites.load(ROOT / "slurm" / "sites" / "local.toml")
    bin_folder = tmp_path / "bin"
    wrapper = sbatch_wrapper(bin_folder, site, real_sbatch)  # adaptation 3
    # the project's folders of this walk ($PROJECT_training2441 and $SCRATCH_training2441 of its login)
    folders = {name: tmp_path / name.split("_")[0].lower() for name in PROJECT_VARS}
    for folder in folders.values():
        folder.mkdir()
    with course_home() as (home, home_files_max):
        terminal = Terminal({**student_env(home, bin_folder), **{k: str(v) for k, v in folders.items()}}, home)
        walk = Walk(terminal, cluster, tmp_path / "exercises-not-yet", tmp_path / "walk.log")
        started = time.monotonic()
        try:
            login(walk, site, wrapper)
            course = set_up(walk)  # adaptation 1
            walk.exercises = course / "exercises"
            yield Student(walk, site, course, folders, home, home_files_max)
        finally:
            terminal.close()
            with walk.log.open("a") as log:
                log.write(f"--- the walk took {time.monotonic() - started:.0f} s\n")


def seed_caches(walk: "Walk", page: str, downloads: Path) -> None:
    """Adaptation 6: the download, as a copy of the stand-ins (seeded once into `downloads`) to where the student's
    shell sends it: FASTAI_HOME and TORCH_HOME as the course venv set them, else fastai's and torch's own defaults in
    the home."""
    if not (downloads / "fastai").is_dir():
        seeded = subprocess.run([sys.executable, "-m", "harness.minipets", "--fastai-home", str(downloads / "fastai"),
                                 "--torch-home", str(downloads / "torch")], cwd=ROOT, capture_output=True, text=True,
                                timeout=600)
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    fastai, torch = '"${FASTAI_HOME:-$HOME/.fastai}"', '"${TORCH_HOME:-$HOME/.cache/torch}"'
    walk.type(page, None, f"mkdir -p {fastai} {torch} && cp -r {shlex.quote(str(downloads / 'fastai'))}/. {fastai}/ "
                          f"&& cp -r {shlex.quote(str(downloads / 'torch'))}/. {torch}/")


def dataquota(output: str) -> dict[str, tuple[str, int, int, int]]:
    """`jutil user dataquota`'s rows: name -> (folder, files, soft, hard)."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[2].isdigit():
            rows[parts[0]] = (parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
    return rows


@pytest.mark.slurm
@pytest.mark.slow
def test_a_student_follows_day_one_on_the_local_cluster(local_slurm: LocalCluster, tmp_path: Path):
    with logged_in(local_slurm, tmp_path) as student:
        walk, course = student.walk, student.course
        for page in PAGES:
            examples = example_job_ids(course / page)
            walk.type(page, None, f"cd ~/{WORK}")  # adaptation 8
            if page in KNOBS:  # adaptation 7
                walk.type(page, None, "export " + " ".join(f"{k}={v}" for k, v in KNOBS[page].items()))
            last_job = ""
            for step in student_steps(course / page):
                if step.run.startswith("python cats.py --prefetch"):
                    seed_caches(walk, page, tmp_path / "downloads")  # adaptation 6
                command = with_job_id(step.run, last_job, examples) if last_job else step.run  # adaptation 4
                ran = walk.type(page, step, command)
                if step.submits:
                    ids = re.findall(r"Submitted batch job (\d+)", ran.output)
                    assert ids, f"{page}:{step.command.line}: `{command}` printed no job id:\n{ran.output}"
                    last_job = ids[-1]
                    local_slurm.jobs.append(last_job)  # cancelled at teardown if the walk fails
                    walk.jobs.append(Submitted(page, step, command, last_job))
                if step.waits:  # adaptation 5
                    walk.wait()
            walk.wait()
            if page in CHECKS_AFTER:  # the "Check your work" box, "in the course folder" (adaptation 9)
                walk.type(CHECKS_AFTER[page], None, "cd ~/course")
                for command in check_commands(course / CHECKS_AFTER[page]):
                    walk.type(CHECKS_AFTER[page], Step(command, command.text, False, False), command.text)
        quota = walk.type(SETUP_PAGE, None, "jutil user dataquota").output

    # the home stayed small: the course's files went to $PROJECT, its data to $SCRATCH
    site, folders, home_files_max = student.site, student.folders, student.home_files_max
    rows = dataquota(quota)
    assert rows["HOME"][3] == home_files_max and rows["HOME"][1] <= rows["HOME"][2], quota
    assert (rows["PROJECT"][0], rows["SCRATCH"][0]) == (str(folders["PROJECT_training2441"]),
                                                        str(folders["SCRATCH_training2441"])), quota
    assert (folders["SCRATCH_training2441"] / os.environ.get("USER", pwd.getpwuid(os.geteuid()).pw_name) / "cache"
            / "fastai" / "data" / "oxford-iiit-pet" / "images").is_dir(), "the data set did not go to $SCRATCH"
    assert course.resolve().is_relative_to(folders["PROJECT_training2441"].resolve()), course
    checks = [r for r in walk.ran if "--target exercises" in r.command]
    assert len(checks) == 2 and all(re.search(r"\b\d+ passed\b", r.output) for r in checks), \
        [r.output[-500:] for r in checks]

    # every job completed
    for job in walk.jobs:
        assert job.record is not None
        state = job.record.get("JobState", "UNKNOWN")
        if state != "COMPLETED":
            pytest.fail(f"{job.page}:{job.step.command.line}: the job of `{job.command}` ({job.job_id}) ended "
                        f"{state} (exit code {job.record.get('ExitCode')}, reason {job.record.get('Reason')}):\n"
                        f"{walk.files_of(job)}", pytrace=False)
    exercises = course / "exercises"
    matrix = [job for job in walk.jobs if job.page == "book/matrix.md"]
    cats = [job for job in walk.jobs if job.page == "book/cats.md"]
    assert len(matrix) == 2 and len(cats) == 2, [job.command for job in walk.jobs]
    for jobs, name in ((matrix, "matrix"), (cats, "cats")):  # the site's cores, not the script's 128: the wrapper ran
        assert [job.record.get("NumCPUs") for job in jobs] == [str(site.job(name).cpus_per_task)] * 2, \
            [(job.command, job.record.get("NumCPUs")) for job in jobs]

    # the matrix lesson: the login-node product, then the job on the CPU of a node without a real GPU
    assert "The result is:" in walk.output_of("python matrix.py"), walk.output_of("python matrix.py")
    for job in matrix:
        output = (exercises / f"output.{job.job_id}").read_text()
        assert "device: cpu" in output and "check: passed" in output, f"{job.command}:\n{output}"
    assert "device: cpu" in walk.output_of(f"cat output.{matrix[0].job_id}")
    assert (exercises / f"error.{matrix[0].job_id}").is_file()

    # the venv lesson: fastai from the venv, torch from the module, never from the venv
    versions = walk.output_of('python -c "import fastai, torch').strip().splitlines()[-1].split()
    assert len(versions) == 2 and versions[1].endswith("torch/__init__.py"), versions
    assert not versions[1].startswith(str(course / "venv-template" / "venv")), f"torch comes from the venv: {versions}"
    assert (course / "venv-template" / "venv" / "bin" / "python").exists()

    # the cats lesson: prefetch on the login node, training epochs in the job's output, the model saved
    assert "Caches are filled" in walk.output_of("python cats.py --prefetch")
    for job, epochs in zip(cats, (2, 1)):
        output = (exercises / f"output.{job.job_id}").read_text()
        assert [int(n) for n in EPOCH_LINE.findall(output)] == list(range(epochs)), \
            f"`{job.command}` should train {epochs} epochs:\n{output}"
    assert EPOCH_LINE.search(walk.output_of(f"cat output.{cats[0].job_id}")), "`cat output.<jobid>` shows no epochs"
    assert (exercises / "models" / "model.pth").is_file()
    assert "model.pth" in walk.output_of("ls models runs")


@pytest.mark.slurm
def test_caches_kept_in_the_home_overflow_its_file_limit(local_slurm: LocalCluster, tmp_path: Path):
    """The broken copy: the course as it was, its venv leaving the caches where fastai and torch put them by default
    (`~/.fastai`, `~/.cache/torch`). The walk's own steps, set-up, venv lesson and the cats lesson's download (the
    stand-ins' copy, adaptation 6), then stop at the home's file limit with the error a tmpfs gives, "No space
    left on device" (JSC's quota says "Disk quota exceeded"); the same steps with the course's venv pass in the walk
    above. It needs no job, only the local cluster's home and modules."""
    with logged_in(local_slurm, tmp_path) as student:
        (student.course / "venv-template" / "caches.sh").write_text("course_caches() { :; }  # the broken copy\n")
        for step in student_steps(student.course / "book/venv.md"):
            student.walk.type("book/venv.md", step, step.run)
        with pytest.raises(pytest.fail.Exception) as failed:
            seed_caches(student.walk, "book/cats.md", tmp_path / "downloads")
    message = str(failed.value)
    assert "No space left on device" in message and f"{student.home}/.fastai/" in message, \
        f"the caches in the home ({student.home_files_max} files at most) should not fit:\n{message[-2000:]}"


LAPTOP_PAGES = ("book/matrix.md", "book/cats.md", "book/tensorboard.md", "book/data-formats.md", "book/ddp.md")
ACTIVATE = re.compile(r"`(source \.venv/bin/activate)`")  # the book's one line for a laptop (book/intro.md)
DDP_ON_A_LAPTOP = re.compile(r"`(DATA=\S+ EPOCHS=1 torchrun --standalone [^`]+)`")


@pytest.mark.slow
def test_a_student_types_the_book_on_a_laptop(tmp_path: Path):
    """The book's laptop commands in one bash, as a normal user without a Slurm cluster, after the README's set-up:
    the intro's `source .venv/bin/activate`, then the cats lesson's short CPU run, the packing of exercise 4 and
    exercise 5's two-process torchrun (their exercise's folder), and every lesson's "Check your work" box in the
    course folder. Adaptations: the course is a copy with the exercises done and the project's `.venv` linked in
    (what `bash setup.sh` makes); the data set and weights are the stand-ins in fastai's and torch's default caches
    in the scratch home (no internet here); `SLURM_CONF` names no cluster, so the boxes' cluster checks say "not
    checked", as on a laptop. Each command must exit 0, and each box must pass its checks."""
    home = tmp_path / "home"
    course = copy_course(ROOT, home / "course")
    for program in (course / "solutions").iterdir():
        if program.is_file():
            shutil.copy2(program, course / "exercises" / program.name)
    (course / ".venv").symlink_to(ROOT / ".venv")
    seeded = subprocess.run([sys.executable, "-m", "harness.minipets", "--fastai-home", str(home / ".fastai"),
                             "--torch-home", str(home / ".cache" / "torch")], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    intro = (ROOT / "book" / "intro.md").read_text()
    activate = ACTIVATE.findall(intro)
    assert len(activate) == 1, "book/intro.md should tell a laptop reader once: `source .venv/bin/activate`"
    cats_run = [c.text for c in block_commands(ROOT / "book" / "cats.md", "EPOCHS=1 SIZE=64 python cats.py")]
    pack = [c.text for c in block_commands(ROOT / "book" / "data-formats.md", "python pack.py")
            if c.text.startswith("python pack.py")]
    ddp = DDP_ON_A_LAPTOP.findall((ROOT / "book" / "ddp.md").read_text())
    assert cats_run == ["EPOCHS=1 SIZE=64 python cats.py"] and len(pack) == 1 and len(ddp) == 1, (cats_run, pack, ddp)

    env = student_env(home, tmp_path / "bin")
    env.update(SLURM_CONF=str(tmp_path / "no-cluster" / "slurm.conf"))
    terminal = Terminal(env, home)
    walk = Walk(terminal, LocalCluster(), course / "exercises", tmp_path / "walk.log")
    try:
        walk.type("book/intro.md", None, "cd ~/course")
        walk.type("book/intro.md", None, activate[0])
        assert walk.type("book/intro.md", None, "command -v python pytest torchrun").output.count("/.venv/bin/") == 3
        walk.type("book/cats.md", None, "cd ~/course/exercises")
        walk.type("book/cats.md", None, cats_run[0])
        walk.type("book/data-formats.md", None, pack[0])
        walk.type("book/ddp.md", None, ddp[0])
        walk.type("book/intro.md", None, "cd ~/course")
        for page in LAPTOP_PAGES:
            for command in check_commands(ROOT / page):
                ran = walk.type(page, Step(command, command.text, False, False), command.text)
                summary = ran.output.strip().splitlines()[-1]
                assert re.search(r"\b\d+ passed\b", summary) and "failed" not in summary, f"{page}: {summary}"
    finally:
        terminal.close()
    assert (course / "exercises" / "models" / "model.pth").is_file()
    assert (course / "exercises" / "packed" / "pets.h5").is_file()


def test_the_recap_counts_the_exercises_the_self_check_runs():
    """book/recap.md says how many exercises `pytest --target exercises` checks: the registry's count."""
    from harness.exercises import all_exercises

    words = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}
    count = len(all_exercises())
    recap = (ROOT / "book" / "recap.md").read_text()
    named = set(re.findall(r"checks of all (\w+) exercises", recap))
    assert named == {words[count]}, f"book/recap.md names {named}, the registry holds {count} exercises"


# Packages of the project's .venv (requirements.txt) that the course venv on JURECA has neither from pip
# (venv-template/requirements.txt) nor from the modules: the book's build and the browser tests need them
NOT_IN_THE_COURSE_VENV = ("jupyter_book", "sphinx_exercise", "sphinx_copybutton", "jupytext", "nbclient", "nbformat",
                          "myst_nb", "ipykernel", "playwright", "lmdb")


def test_the_self_check_needs_only_what_the_course_venv_has(tmp_path: Path):
    """The "Check your work" boxes on JURECA run in the course venv, where the packages of the book's build are
    missing (the local module tree hides this: it exposes the whole project .venv). Each of them made unimportable
    (a module of that name that raises ImportError, first on the path; pytest-xdist left out as `-p no:xdist`),
    `python -m pytest --target exercises` still collects every exercise's checks. The same without `--target`
    (all of the course team's tests) fails at collection: the blockers work."""
    for name in NOT_IN_THE_COURSE_VENV:
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('{name} is not in the course venv')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}

    def collect(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                               "--collect-only", "-q", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)

    student = collect("--target", "exercises")
    assert student.returncode == 0, student.stdout[-3000:] + student.stderr[-2000:]
    from harness.exercises import all_exercises
    for exercise in all_exercises():
        for test in exercise.tests:
            assert f"{test}::" in student.stdout, f"{test} ({exercise.heading}) was not collected"
    team = collect()
    assert team.returncode != 0 and "is not in the course venv" in team.stdout + team.stderr, team.stdout[-2000:]
