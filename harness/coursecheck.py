"""Check the course's own files the way a student and sbatch will read them: `python -m harness.coursecheck [ROOT]`.

It prints one line per problem, `file:line: what is wrong and what to do`, and exits 1 if there is any; otherwise
it prints `course files: N checked, no problems`. The tests call `check_course(root)` (or one rule) on any folder,
so that a deliberately broken copy of the course proves each rule. The rules, each a mistake that published course
material has shipped:

1. **#SBATCH after a command** (`sbatch_order`): sbatch reads `#SBATCH` lines only up to the first command of the
   script and silently ignores the rest, so the job runs with defaults. Blank lines, comments and the shebang
   before them are fine.
2. **Merge-conflict markers** (`conflict_markers`): a line that starts with seven `<`, `|` or `>` (followed by a
   space or nothing), or that is exactly seven `=`, in any course text file (`.sbatch .sh .py .md .toml .yml .cfg
   .txt` and the like) outside environments and builds (`.venv`, `venv`, `_build`, hidden folders, ...).
3. **A GPU partition without GPUs** (`gpus`): the partition is the script's own `--partition`, or, when it names
   none, the one the site profiles (`slurm/sites/*.toml`) put on the command line. A name holding `gpu` or
   `booster` is a GPU partition, and there JSC gives a job GPUs only when it asks: `--gres=gpu:N`, `--gpus`,
   `--gpus-per-node` or `--gpus-per-task`.
4. **Cores that never reach srun** (`srun_cpus`): a job with more than one core per task (its own
   `--cpus-per-task`, or, when it sets none, the largest `cpus_per_task` of the site profiles, which the harness
   passes on) must export `SRUN_CPUS_PER_TASK` before its first `srun` (or give `srun` `--cpus-per-task`): since
   Slurm 22.05 srun does not take the job's value, and the program gets one core.
5. **A command naming a file that is not there** (`commands`): the shell commands of the book (`bash`/`sh`/
   `console` blocks of every page in `_toc.yml`; in console blocks the `$ ` lines) and the usage comments at the
   top of sbatch files and of the programs in `exercises/` and `solutions/`. The commands looked at:
   `sbatch X`, `python X.py`, `bash X`, `source X` / `. X` (X must exist), `cp X... DEST`, `cat`/`head`/`tail`/
   `less X` (X must exist if it is a course file, see below), and `cd DIR` (DIR must exist).

   *Where a command runs.* `~` is the student's home and `~/course` the course folder (the clone). Every page
   starts in `~/course/exercises`, the folder the book tells the reader to work in ("Then work in
   ~/course/exercises", matrix lesson); each `cd` then holds for the following commands and blocks of the same
   page. The usage comment of an sbatch file starts there too (scripts are submitted from exercises/); that of
   a program in exercises/ or solutions/ starts in the program's own folder ("from this folder").

   *What is not checked.* Paths outside `~/course` (`~/.ssh/config`, `/p/project/...`): they are the reader's own.
   Placeholders the reader fills in: `<jobid>`, `$VAR`, globs, and names in capitals with an underscore
   (`YOUR_NAME`). Files a reader *reads* (`cat`, `cp`, `head`, ...) are checked only when they are course files by
   their kind (`.py .sh .sbatch .toml .txt .md .yml .cfg .example ...`): a job's `output.412169`, a model
   `models/model.pth` or packed data are results of earlier steps, never course files. Files an earlier command
   of the same page (or comment) makes count as present from then on: the destination of `cp`/`mv`, the folders of
   `mkdir`, `touch`ed files, `>` redirections, and the arguments after a program's own file
   (`python pack.py IMAGES packed` makes `packed/`). In usage comments, which are prose, a word counts as a file
   only if it looks like a path (holds a `/` or a suffix): "sbatch reads the #SBATCH lines" names no file.
6. **A GPU by local id where each task sees one** (`local_id_gpus`): a job with more than one task per node
   (`--ntasks-per-node` above 1) whose `srun` starts a course program (found beside the script, in `exercises/` or
   in `solutions/`) that picks `cuda:<SLURM_LOCALID>`: a line naming `cuda` and `SLURM_LOCALID` (or a name assigned
   from it) but not `device_count`. On JURECA-DC, psslurm gives each of several tasks on a node one GPU of its
   own, so every task but the first asks for a GPU it cannot see ("invalid device ordinal"). Fine: picking among
   the GPUs the task sees (`... % torch.cuda.device_count()`), or a script that exports `CUDA_VISIBLE_DEVICES`
   before the srun (then psslurm leaves every task all of them, as JSC's own loader script does).
"""
from __future__ import annotations

import argparse
import os
import posixpath
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness import bookcommands
from harness.bookcommands import Command, is_placeholder, strip_comment, words

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = frozenset({".sbatch", ".sh", ".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".in", ".lua",
                           ".example", ".ini", ".conf", ".dot", ".rst"})
SKIP_DIRS = frozenset({".venv", "venv", "_build", "node_modules", "__pycache__", "slurm-out", "artifacts", "models",
                       "runs", "site-packages"})
KEEP_HIDDEN = frozenset({".ci", ".github"})  # hidden folders that hold course files
# What a reader's `cat`, `cp` or `head` may name that must then be in the course
COURSE_SUFFIXES = frozenset({".py", ".sh", ".sbatch", ".toml", ".txt", ".md", ".yml", ".yaml", ".cfg", ".example",
                             ".lua", ".in", ".ini", ".conf", ".json"})
COURSE = PurePosixPath("course")  # ~/course, relative to the home folder
WORK = COURSE / "exercises"  # where the book works
CONFLICT = re.compile(r"^(<{7}|\|{7}|>{7})(?:\s|$)|^(={7})\s*$")
GPU_PARTITION = re.compile(r"gpu|booster", re.IGNORECASE)
GPU_OPTIONS = ("gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket")
SHORT_OPTIONS = {"-p": "partition", "-c": "cpus-per-task", "-G": "gpus", "-A": "account", "-N": "nodes",
                 "-n": "ntasks", "-t": "time", "-J": "job-name", "-o": "output", "-e": "error", "-D": "chdir"}
# sbatch's short options that take a value, and its long options that take none
SBATCH_SHORT_VALUES = frozenset("AabcCdDeGiJLmMnNopqStwx")
SBATCH_LONG_FLAGS = frozenset({"parsable", "hold", "wait", "exclusive", "requeue", "no-requeue", "test-only",
                               "verbose", "quiet", "help", "usage", "version", "overcommit", "contiguous",
                               "spread-job", "use-min-nodes", "ignore-pbs", "no-kill", "oversubscribe"})
WRAPPERS = frozenset({"srun", "env", "time", "nohup", "exec", "command", "watch"})
PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


@dataclass(frozen=True, order=True)
class Problem:
    file: str  # relative to the course root
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Report:
    problems: list[Problem]
    files: int  # course files looked at

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems] or [f"course files: {self.files} checked, no problems"]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _all_files(root: Path) -> list[Path]:
    """Every file of the course, outside environments, builds and hidden folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and (not d.startswith(".") or d in KEEP_HIDDEN))
        found += [Path(folder) / name for name in sorted(files)]
    return found


def course_files(root: Path) -> list[Path]:
    """The course's text files: every file with a text suffix outside environments, builds and hidden folders."""
    return [path for path in _all_files(root) if path.suffix in TEXT_SUFFIXES]


# --- rule 2: merge-conflict markers -----------------------------------------------------------------------------------

def conflict_markers(root: Path, files: list[Path] | None = None) -> list[Problem]:
    problems = []
    for path in course_files(root) if files is None else files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = CONFLICT.match(line)
            if match:
                marker = match[1] or match[2]
                problems.append(Problem(_relative(path, root), number,
                                        f"merge-conflict marker `{marker}` left in the file: resolve the conflict "
                                        f"(keep the right lines) and delete the marker lines"))
    return problems


# --- sbatch files: rules 1, 3, 4, 6 -----------------------------------------------------------------------------------

@dataclass
class Sbatch:
    """What sbatch makes of a batch script."""
    path: Path
    lines: list[str]
    options: dict[str, tuple[int, str]] = field(default_factory=dict)  # long name -> (line, value), as sbatch sees
    first_command: tuple[int, str] | None = None
    late: list[tuple[int, str]] = field(default_factory=list)  # #SBATCH lines after the first command (ignored)
    first_directive: int = 0


def directive_options(text: str) -> list[tuple[str, str]]:
    """`--key=value`, `--key value`, `-k value` of one #SBATCH line (or a command line) as (long name, value)."""
    try:
        parts = shlex.split(strip_comment(text))
    except ValueError:
        parts = strip_comment(text).split()
    found, index = [], 0
    while index < len(parts):
        word = parts[index]
        if word.startswith("--"):
            key, equals, value = word[2:].partition("=")
            if not equals and index + 1 < len(parts) and not parts[index + 1].startswith("-"):
                value, index = parts[index + 1], index + 1
            found.append((key, value))
        elif word.startswith("-") and len(word) >= 2:
            value = word[2:]
            if not value and index + 1 < len(parts):
                value, index = parts[index + 1], index + 1
            found.append((SHORT_OPTIONS.get(word[:2], word[1:2]), value))
        index += 1
    return found


def read_sbatch(path: Path) -> Sbatch:
    script = Sbatch(path, path.read_text(encoding="utf-8", errors="replace").splitlines())
    for number, line in enumerate(script.lines, 1):
        stripped = line.strip()
        if line.startswith("#SBATCH"):
            if script.first_command is not None:
                script.late.append((number, stripped))
                continue
            script.first_directive = script.first_directive or number
            for key, value in directive_options(line[len("#SBATCH"):]):
                script.options[key] = (number, value)
        elif stripped and not stripped.startswith("#") and script.first_command is None:
            script.first_command = (number, stripped)
    return script


def sbatch_order(script: Sbatch, rel: str) -> list[Problem]:
    if script.first_command is None:
        return []
    line, command = script.first_command
    return [Problem(rel, number, f"`{text}` comes after the first command (line {line}: `{command}`), so sbatch "
                                 f"ignores it and the job runs without it: move it up to the other #SBATCH lines, "
                                 f"above line {line}")
            for number, text in script.late]


@dataclass(frozen=True)
class Sites:
    """What the site profiles of a course put on the sbatch command line."""
    partitions: tuple[tuple[str, str], ...] = ()  # (profile file, partition)
    cpus_per_task: int = 1  # the largest
    gpus_per_node: int = 4  # the largest


def read_sites(root: Path) -> Sites:
    partitions, cpus, gpus = [], [], []
    for path in sorted((root / "slurm" / "sites").glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue  # harness/sites.py reports a broken profile
        if isinstance(data.get("partition"), str) and data["partition"]:
            partitions.append((_relative(path, root), data["partition"]))
        if isinstance(data.get("cpus_per_task"), int):
            cpus.append(data["cpus_per_task"])
        if isinstance(data.get("gpus_per_node"), int):
            gpus.append(data["gpus_per_node"])
    return Sites(tuple(partitions), max(cpus, default=1), max(gpus, default=4))


def gpus(script: Sbatch, rel: str, sites: Sites) -> list[Problem]:
    asked = any(key in script.options for key in GPU_OPTIONS) or "gpu" in script.options.get("gres", (0, ""))[1]
    if asked:
        return []
    fix = (f"add `#SBATCH --gres=gpu:{sites.gpus_per_node}` to the #SBATCH lines (on JSC's GPU partitions a job "
           f"gets GPUs only when it asks for them; without it torch sees none and prints `device: cpu`)")
    if "partition" in script.options:
        line, partition = script.options["partition"]
        if GPU_PARTITION.search(partition):
            return [Problem(rel, line, f"the job runs on the GPU partition `{partition}` but asks for no GPUs: {fix}")]
        return []
    on_gpus = [(profile, partition) for profile, partition in sites.partitions if GPU_PARTITION.search(partition)]
    if on_gpus:
        profile, partition = on_gpus[0]
        return [Problem(rel, script.first_directive or 1, f"the site profile {profile} submits the job to the GPU "
                                                          f"partition `{partition}`, but it asks for no GPUs: {fix}")]
    return []


def _cores(script: Sbatch, sites: Sites) -> tuple[int, str]:
    """Cores per task and where the number comes from."""
    if "cpus-per-task" in script.options:
        value = script.options["cpus-per-task"][1]
        return (int(value) if value.isdigit() else 1), f"--cpus-per-task={value}"
    return sites.cpus_per_task, f"cpus_per_task = {sites.cpus_per_task} of the site profiles, passed on by sbatch"


def srun_cpus(script: Sbatch, rel: str, sites: Sites) -> list[Problem]:
    cores, source = _cores(script, sites)
    if cores <= 1 or script.first_command is None:
        return []
    exported = False
    start = script.first_command[0]
    body = [(start + i, line) for i, line in enumerate(script.lines[start - 1:])]
    for number, text in bookcommands.logical_lines(body):
        for simple in words(text):
            command = list(simple.words)
            prefix = False
            while command and re.match(r"^[A-Za-z_]\w*=", command[0]):
                prefix = prefix or command[0].startswith("SRUN_CPUS_PER_TASK=")
                command = command[1:]
            if not command:
                exported = exported or prefix  # SRUN_CPUS_PER_TASK=... alone (then `export` it, or not: see below)
                continue
            if command[0] in ("export", "declare", "typeset") and any(
                    word.startswith("SRUN_CPUS_PER_TASK") for word in command[1:]):
                exported = True
            elif command[0] == "srun":
                own = any(key == "cpus-per-task" for key, _ in directive_options(" ".join(command[1:])))
                if not (exported or prefix or own):
                    return [Problem(rel, number, f"the job asks for {cores} cores per task ({source}), but since "
                                                 f"Slurm 22.05 this srun gives the program only one: add "
                                                 f"`export SRUN_CPUS_PER_TASK=\"$SLURM_CPUS_PER_TASK\"` before it")]
                return []
    return []


LOCAL_ID = re.compile(r"\bSLURM_LOCALID\b")
ASSIGNED = re.compile(r"^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=[^=]")


def _picks_gpu_by_local_id(program: Path) -> int:
    """The line (1-based) where `program` picks `cuda:<local id>` without looking at what it sees; 0 if none."""
    names = set()
    for number, line in enumerate(program.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        code = line.split("#", 1)[0]
        by_local_id = LOCAL_ID.search(code) or any(re.search(rf"\b{name}\b", code) for name in names)
        if by_local_id and "cuda" in code and "device_count" not in code:
            return number
        assigned = ASSIGNED.match(code)
        if assigned and LOCAL_ID.search(code) and "cuda" not in code:
            names.update(name.strip() for name in assigned.group(1).split(","))
    return 0


def local_id_gpus(script: Sbatch, rel: str, root: Path) -> list[Problem]:
    tasks = script.options.get("ntasks-per-node", (0, "1"))[1]
    if not tasks.isdigit() or int(tasks) <= 1 or script.first_command is None:
        return []
    start = script.first_command[0]
    body = [(start + i, line) for i, line in enumerate(script.lines[start - 1:])]
    for number, text in bookcommands.logical_lines(body):
        for simple in words(text):
            if list(simple.words[:1]) in (["export"], ["declare"]) and any(
                    word.startswith("CUDA_VISIBLE_DEVICES=") for word in simple.words[1:]):
                return []  # every task keeps the whole list (psslurm: a changed variable is left alone)
            command = [word for word in simple.words if not re.match(r"^[A-Za-z_]\w*=", word)]
            if command[:1] != ["srun"]:
                continue
            python = next((i for i, word in enumerate(command) if PYTHON.match(word)), None)
            name = _program(command[python + 1:])[0] if python is not None else None
            if not name or not name.endswith(".py"):
                continue
            places = [script.path.parent, root / "exercises", root / "solutions"]
            for program in (place / PurePosixPath(name).name for place in places):
                line = _picks_gpu_by_local_id(program) if program.is_file() else 0
                if line:
                    return [Problem(rel, number, f"{int(tasks)} tasks per node run {name}, which picks "
                                                 f"`cuda:<SLURM_LOCALID>` ({_relative(program, root)}:{line}); on "
                                                 f"JURECA-DC psslurm gives each of them one GPU of its own, so every "
                                                 f"task but the first asks for a GPU it cannot see (\"invalid device "
                                                 f"ordinal\"): pick among the GPUs the task sees (SLURM_LOCALID % "
                                                 f"torch.cuda.device_count())")]
    return []


def sbatch_files(root: Path, files: list[Path] | None = None) -> list[Path]:
    return [p for p in (course_files(root) if files is None else files) if p.suffix == ".sbatch"]


def check_sbatch(root: Path, files: list[Path] | None = None) -> list[Problem]:
    """Rules 1, 3, 4 and 6 for every sbatch file of the course."""
    sites = read_sites(root)
    problems = []
    for path in sbatch_files(root, files):
        script, rel = read_sbatch(path), _relative(path, root)
        problems += sbatch_order(script, rel) + gpus(script, rel, sites) + srun_cpus(script, rel, sites)
        problems += local_id_gpus(script, rel, root)
    return problems


# --- rule 5: commands that name files ---------------------------------------------------------------------------------

def _shown(place: PurePosixPath | None) -> str:
    return "an unknown folder" if place is None else "~" if str(place) in ("", ".") else f"~/{place}"


class Walk:
    """The reader's shell, as far as files go: where it is, and what earlier commands made."""

    def __init__(self, root: Path, rel: str, start: PurePosixPath, prose: bool = False):
        self.root, self.rel, self.cwd, self.prose = root, rel, start, prose
        self.made: set[PurePosixPath] = set()
        self.problems: list[Problem] = []

    # where a word points, relative to the home folder (None: outside it, or unknown)
    def place(self, word: str) -> PurePosixPath | None:
        word = re.sub(r"^(\$HOME|\$\{HOME\})(?=/|$)", "~", word)
        if word == "~" or word.startswith("~/"):
            joined = posixpath.normpath(word[2:] or ".")
        elif word.startswith("/") or word.startswith("~"):
            return None
        elif self.cwd is None:
            return None
        else:
            joined = posixpath.normpath(posixpath.join(str(self.cwd) or ".", word))
        if joined == ".." or joined.startswith("../"):
            return None
        return PurePosixPath("" if joined == "." else joined)

    def in_course(self, place: PurePosixPath | None) -> bool:
        return place is not None and place.parts[:1] == COURSE.parts

    def there(self, place: PurePosixPath, folder: bool = False) -> bool:
        if any(place == made or made in place.parents for made in self.made):
            return True
        target = self.root.joinpath(*place.parts[1:])
        return target.is_dir() if folder else target.exists()

    def looks_like_path(self, word: str) -> bool:
        return "/" in word or bool(PurePosixPath(word).suffix)

    def make(self, word: str) -> None:
        place = self.place(word)
        if place is not None and not is_placeholder(word):
            self.made.add(place)

    def need(self, command: Command, word: str, reader: bool = False) -> None:
        """`word` must name a file of the course that is there."""
        if is_placeholder(word) or (self.prose and not self.looks_like_path(word)):
            return
        if reader and PurePosixPath(word).suffix not in COURSE_SUFFIXES:
            return
        place = self.place(word)
        if not self.in_course(place) or self.there(place):
            return
        self.problems.append(Problem(self.rel, command.line, self._missing(command, word, place)))

    def _missing(self, command: Command, word: str, place: PurePosixPath) -> str:
        name = PurePosixPath(word).name
        elsewhere = [p for p in _all_files(self.root) if p.name == name]
        text = strip_comment(command.text)
        if elsewhere and self.cwd is not None:
            found = COURSE.joinpath(*elsewhere[0].relative_to(self.root).parts)
            better = posixpath.relpath(str(found), str(self.cwd) or ".")
            return (f"`{text}` runs in {_shown(self.cwd)}, where there is no {word}: the course has it at "
                    f"{_shown(found)}, so write {better}")
        return (f"`{text}` runs in {_shown(self.cwd)}, where there is no {word}, and the course has no file of "
                f"that name: fix the name or the folder")

    def run(self, command: Command) -> None:
        for simple in words(command.text):
            self.simple(command, simple.words)
            for target in simple.creates:
                self.make(target)

    def simple(self, command: Command, ws: list[str]) -> None:
        while ws and re.match(r"^[A-Za-z_]\w*=", ws[0]):
            ws = ws[1:]
        while ws and ws[0] in WRAPPERS:
            ws = ws[1:]
            while ws and ws[0].startswith("-"):
                ws = ws[1:]
        if not ws:
            return
        name, args = ws[0], ws[1:]
        positional = [a for a in args if not a.startswith("-")]
        if name == "cd":
            self.cd(command, args[0] if args else "~")
        elif name in ("mkdir", "touch"):
            for arg in positional:
                self.make(arg)
        elif name in ("cp", "mv"):
            if len(positional) >= 2:
                for source in positional[:-1]:
                    self.need(command, source, reader=True)
                self.make(positional[-1])
        elif name in ("cat", "less", "more", "head", "tail"):
            skip = False
            for arg in args:
                if skip:
                    skip = False
                elif arg in ("-n", "-c"):
                    skip = True
                elif not arg.startswith("-"):
                    self.need(command, arg, reader=True)
        elif name == "sbatch":
            script = _sbatch_script(args)
            if script is not None:
                self.need(command, script)
        elif PYTHON.match(name) or name in ("bash", "sh", "zsh"):
            program, rest = _program(args)
            if program is not None and (not PYTHON.match(name) or program.endswith(".py")):
                self.need(command, program)
                for arg in rest:
                    if not arg.startswith("-"):
                        self.make(arg)
        elif name in ("source", "."):
            if positional:
                self.need(command, positional[0])

    def cd(self, command: Command, target: str) -> None:
        if target == "-" or is_placeholder(target):
            self.cwd = None
            return
        place = self.place(target)
        if self.in_course(place) and not self.there(place, folder=True):
            self.problems.append(Problem(self.rel, command.line,
                                         f"`{strip_comment(command.text)}`: the course has no folder "
                                         f"{_shown(place)}: fix the folder name"))
            self.cwd = None  # the reader is stuck; do not report every later command as well
            return
        self.cwd = place


def _sbatch_script(args: list[str]) -> str | None:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("--wrap"):
            return None
        if arg.startswith("--"):
            if "=" not in arg and arg[2:] not in SBATCH_LONG_FLAGS:
                index += 1
        elif arg.startswith("-"):
            if len(arg) == 2 and arg[1] in SBATCH_SHORT_VALUES:
                index += 1
        else:
            return arg
        index += 1
    return None


def _program(args: list[str]) -> tuple[str | None, list[str]]:
    """The program file an interpreter runs, and the arguments after it (None for -c and -m)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-c", "-m"):
            return None, []
        if arg in ("-W", "-X", "-o", "-O") and not arg.startswith("--"):
            index += 2 if arg in ("-W", "-X") else 1
            continue
        if not arg.startswith("-"):
            return arg, args[index + 1:]
        index += 1
    return None, []


def book_pages(root: Path) -> tuple[list[Path], list[Problem]]:
    """The pages of the book in the order of its table of contents (all of book/*.md, by name, when _toc.yml
    cannot be read, with a problem saying so)."""
    import yaml

    from harness.book import toc_files

    try:
        names = toc_files(root)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = str(getattr(error, "problem", None) or error).splitlines()[0]
        return sorted((root / "book").glob("*.md")), [Problem(
            "_toc.yml", mark.line + 1 if mark else 1,
            f"the table of contents is not valid YAML ({reason}): fix it (the pages were checked in name order)")]
    pages = [root / f"{name}.md" for name in names]
    return [page for page in pages if page.is_file()], []


def usage_files(root: Path, files: list[Path] | None = None) -> list[tuple[Path, PurePosixPath]]:
    """Files whose usage comments are checked, each with the folder its commands start in."""
    chosen = []
    for path in course_files(root) if files is None else files:
        rel = path.relative_to(root)
        if path.suffix == ".sbatch":
            chosen.append((path, WORK))
        elif rel.parts[0] in ("exercises", "solutions") and path.suffix in (".py", ".sh"):
            chosen.append((path, COURSE.joinpath(*rel.parts[:-1])))
    return chosen


def check_commands(root: Path, files: list[Path] | None = None) -> list[Problem]:
    """Rule 5 for every page of the book and every usage comment."""
    pages, problems = book_pages(root)
    for page in pages:
        walk = Walk(root, _relative(page, root), WORK)
        for command in bookcommands.page_commands(page):
            walk.run(command)
        problems += walk.problems
    for path, start in usage_files(root, files):
        walk = Walk(root, _relative(path, root), start, prose=True)
        for command in bookcommands.usage_commands(path):
            walk.run(command)
        problems += walk.problems
    return problems


def check_course(root: Path = ROOT) -> Report:
    root = Path(root).resolve()
    files = course_files(root)
    problems = conflict_markers(root, files) + check_sbatch(root, files) + check_commands(root, files)
    return Report(sorted(set(problems)), len(files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.coursecheck",
                                     description="Check the course's sbatch files, book commands and text files.")
    parser.add_argument("root", nargs="?", type=Path, default=ROOT, help="the course folder (default: this one)")
    args = parser.parse_args(argv)
    report = check_course(args.root)
    print("\n".join(report.lines()))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
