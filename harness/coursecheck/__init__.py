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
   ~/course/exercises", first hands-on lesson); each `cd` then holds for the following commands and blocks of the same
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

The rules live in one module per family: `conflicts` (2), `batch` (1, 3, 4, 6: batch scripts, read by
harness/sbatch.py), `commands` (5); `files` holds what they share.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.coursecheck.batch import check_sbatch, exercise_script_problems
from harness.coursecheck.commands import COURSE, WORK, check_commands
from harness.coursecheck.conflicts import conflict_markers
from harness.coursecheck.files import ROOT, Problem, Report, course_files

__all__ = ["COURSE", "ROOT", "WORK", "Problem", "Report", "check_commands", "check_course", "check_sbatch",
           "conflict_markers", "course_files", "exercise_script_problems", "main"]


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
