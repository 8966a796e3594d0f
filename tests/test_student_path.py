"""The student's path through day 1: the book's exercise commands, in the book's order, typed into one real bash,
on the local Slurm cluster, as the course user with a scratch HOME.

Which commands: those of the {exercise} and {solution} blocks of the matrix, venv and cats lessons, in page order
(`harness.bookcommands.student_steps`; `test_the_walk_takes_the_exercise_commands_of_the_day_one_lessons` pins the
list against the real pages). The lessons' console blocks show the same commands with example output, plus
demonstrations that are not steps (`scancel 412169`; a cat job submitted before the prefetch, which hangs without
internet on JURECA). Not walked: the modules lesson (`module spider`/`torchvision` need JSC's real module tree),
the TensorBoard lesson (a laptop, an SSH tunnel and a server that runs until Ctrl+C: tests/test_tunnel.py proves
it), and the login lesson (`ssh jureca`).

    book/matrix.md  cd ~/course/exercises · module load Stages/2024 · module load GCC OpenMPI PyTorch ·
                    python matrix.py · cd ~/course/exercises · sbatch ../slurm/jureca-matrix.sbatch · squeue --me · cat output.<id> ·
                    cat error.<id> · SIZE=4096 sbatch ../slurm/jureca-matrix.sbatch
    book/venv.md    cd ~/course · bash venv-template/setup.sh · source venv-template/activate.sh ·
                    python -c "import fastai, torch; print(fastai.__version__, torch.__file__)"
    book/cats.md    cd ~/course/exercises · source ../venv-template/activate.sh · python cats.py --prefetch ·
                    cd ~/course/exercises · sbatch ../slurm/fastai.sbatch · watch squeue --me · cat output.<jobid> ·
                    ls models runs · EPOCHS=1 sbatch ../slurm/fastai.sbatch

The adaptations, and no others:

1. `git clone ... ~/course` is a scratch copy of this course (copy_course) at `$HOME/course` of a scratch HOME,
   with the exercises done: the files of solutions/ copied over those of exercises/ (exercises/matrix.py itself
   raises NotImplementedError until the student fills it in).
2. Module loads work the way the site profile slurm/sites/local.toml says: the shell first sources Lmod's
   `init/bash` and runs the profile's `export MODULEPATH=...` line (the local cluster's JSC-like tree); a JURECA
   login shell has both already.
3. `sbatch` is a small wrapper that puts local.toml's command-line options for the job
   (`site.sbatch_options(job)`: --partition, --cpus-per-task=2, 1 for the matrix job, as the local nodes have 2
   cores and not 128, --account, --reservation) in front of the student's arguments, as `pytest --cluster` does.
   It is first on PATH and, because loading the local tree's Python module puts /usr/bin (where Slurm's own sbatch
   is) in front of PATH, the shell also gets a function `sbatch` that calls it. Each job's `NumCPUs` proves it.
4. `<id>`, `<jobid>` and the pages' example job ids (412169) become the id of the job just submitted.
5. `watch squeue --me` becomes one `squeue --me`; after it, and after a plain `squeue --me` (the solution follows
   the job "PD, then R, then gone"), the walk waits until the submitted jobs have left the queue. At the end of each
   lesson it waits for the lesson's jobs, as a student reads their output before going on.
6. The data set and the weights are stand-ins seeded into the scratch HOME's caches (`python -m harness.minipets
   --fastai-home ~/.fastai --torch-home ~/.cache/torch`): this machine has no internet. `python cats.py --prefetch`
   still runs, and must succeed, on the "login node".
7. `export EPOCHS=2 SIZE=32` in the shell before the cats lesson (the knobs cats.py reads; sbatch passes the
   environment on): a short CPU run.
8. Each lesson starts in `~/course/exercises`, where the book tells the student to work ("Then work in
   ~/course/exercises", matrix lesson) and where the course checker starts every page (harness.coursecheck.WORK).

A failing command fails the test with its page, line, command and output; a job that does not complete with its
state and the end of its output and error files. The whole walk is kept in `walk.log` in the test's tmp_path.
"""
from __future__ import annotations

import os
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
from pathlib import Path

import pytest

from harness import sites
from harness.coursecheck import WORK
from harness.bookcommands import Step, example_job_ids, student_steps, with_job_id
from harness.course_copy import copy_course
from harness.localcluster import LocalCluster, clean_env
from harness.requires import require
from harness.slurm import tail

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("book/matrix.md", "book/venv.md", "book/cats.md")
KNOBS = {"book/cats.md": {"EPOCHS": "2", "SIZE": "32"}}  # exported before the lesson (adaptation 7)
LMOD_INIT = Path("/usr/share/lmod/lmod/init/bash")
STEP_TIMEOUT_S = 600  # one command (setup.sh and the prefetch are the slow ones)
JOB_TIMEOUT_S = 900  # one job, queue included
EPOCH_LINE = re.compile(r"^(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+:\d+\s*$", re.MULTILINE)
# Variables of the test's own process that a student's login shell does not have
NOT_THE_STUDENTS = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FASTAI_HOME", "TORCH_HOME", "XDG_CACHE_HOME",
                    "COURSE_VENV", "EPOCHS", "SIZE", "OLDPWD", "PWD", "CUDA_VISIBLE_DEVICES")
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
    env = {name: value for name, value in clean_env().items()
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


@pytest.mark.slurm
@pytest.mark.slow
def test_a_student_follows_day_one_on_the_local_cluster(local_slurm: LocalCluster, tmp_path: Path):
    require(LMOD_INIT.is_file(), f"Lmod is not installed ({LMOD_INIT} missing): sudo bash slurm/local-cluster/start.sh")
    real_sbatch = shutil.which("sbatch")
    assert real_sbatch is not None
    site = sites.load(ROOT / "slurm" / "sites" / "local.toml")
    modulepath = [line for line in site.venv_setup if line.startswith("export MODULEPATH=")]
    assert len(modulepath) == 1, f"{site.path} should set MODULEPATH in venv_setup (the local module tree)"

    # adaptation 1: the clone, with the exercises done
    home = tmp_path / "home"
    course = copy_course(ROOT, home / "course")
    for program in (course / "solutions").iterdir():
        if program.is_file():
            shutil.copy2(program, course / "exercises" / program.name)
    # adaptation 6: the caches the login node's download would fill
    seeded = subprocess.run([sys.executable, "-m", "harness.minipets", "--fastai-home", str(home / ".fastai"),
                             "--torch-home", str(home / ".cache" / "torch")], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    bin_folder = tmp_path / "bin"
    wrapper = sbatch_wrapper(bin_folder, site, real_sbatch)  # adaptation 3

    terminal = Terminal(student_env(home, bin_folder), home)
    walk = Walk(terminal, local_slurm, course / "exercises", tmp_path / "walk.log")
    started = time.monotonic()
    try:
        walk.type("login", None, f"source {LMOD_INIT} && {modulepath[0]}")  # adaptation 2
        walk.type("login", None, f'sbatch() {{ {shlex.quote(str(wrapper))} "$@"; }}')  # adaptation 3
        for page in PAGES:
            examples = example_job_ids(course / page)
            walk.type(page, None, f"cd ~/{WORK}")  # adaptation 8
            if page in KNOBS:  # adaptation 7
                walk.type(page, None, "export " + " ".join(f"{k}={v}" for k, v in KNOBS[page].items()))
            last_job = ""
            for step in student_steps(course / page):
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
    finally:
        terminal.close()
        with walk.log.open("a") as log:
            log.write(f"--- the walk took {time.monotonic() - started:.0f} s\n")

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
