"""The course checker (harness/coursecheck/) passes the real course and catches each published mistake.

Every rule is proven on a broken copy: a scratch copy of the course (copy_course) with one deliberate mistake, or a
small tree in tmp_path. Fast: no cluster, no network.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import coursecheck
from harness.course_copy import copy_course

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^[^\s:]+:\d+: \S.*$")  # file:line: message


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A scratch copy of the course, to break."""
    return copy_course(ROOT, tmp_path / "course")


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` (a whole line, once) by `new` lines; returns the 1-based line where `new` starts."""
    lines = path.read_text().splitlines()
    index = lines.index(old)
    lines[index:index + 1] = new.splitlines()
    path.write_text("\n".join(lines) + "\n")
    return index + 1


def replaced(path: Path, old: str, new: str) -> Path:
    """`path` with its text `old` (which it must hold) replaced by `new`, once."""
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}: update this broken copy"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def problems(root: Path) -> list[str]:
    return [str(p) for p in coursecheck.check_course(root).problems]


def only(found: list[str], file: str, line: int, *words: str) -> None:
    """Exactly one problem, at file:line, saying all of `words`."""
    assert len(found) == 1, "expected one problem, got:\n" + "\n".join(found)
    assert found[0].startswith(f"{file}:{line}: "), found[0]
    for word in words:
        assert word in found[0], found[0]


def only_without(course: Path, removed: list[str], at: str, *words: str) -> None:
    """slurm/fastai.sbatch without its lines `removed` has exactly one problem, at its line `at`, saying `words`."""
    script = course / "slurm/fastai.sbatch"
    for line in removed:
        edit(script, line, "")
    only(problems(course), "slurm/fastai.sbatch", line_of(script, at), *words)


# --- the real course -------------------------------------------------------------------------------------------------

def test_the_real_course_has_no_problems():
    report = coursecheck.check_course(ROOT)
    assert not report.problems, "the course checker found:\n" + "\n".join(map(str, report.problems))
    assert report.files > 50


def test_the_command_line_says_how_many_files_it_checked_and_exits_0():
    done = subprocess.run([sys.executable, "-m", "harness.coursecheck"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"course files: \d+ checked, no problems\n", done.stdout), done.stdout


def test_the_command_line_prints_one_file_line_message_per_problem_and_exits_1(course: Path):
    edit(course / "slurm/fastai.sbatch", 'export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"', "")
    (course / "book/matrix.md").write_text((course / "book/matrix.md").read_text() + "\n=======\n")
    done = subprocess.run([sys.executable, "-m", "harness.coursecheck", str(course)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(LINE.match(line) for line in lines), done.stdout
    assert lines[0].startswith("book/matrix.md:") and lines[1].startswith("slurm/fastai.sbatch:"), done.stdout


# --- rule 1: #SBATCH after the first command -------------------------------------------------------------------------

def test_an_sbatch_line_after_the_first_command_is_caught(course: Path):
    script = course / "slurm/jureca-matrix.sbatch"
    first = line_of(script, "module load Stages/2024                 # the 2024 software stage")
    second = "module load GCC OpenMPI PyTorch         # compiler, MPI, then PyTorch (and the Python it needs)"
    late = edit(script, second, "#SBATCH --time=00:05:00\nmodule load GCC OpenMPI PyTorch")
    only(problems(course), "slurm/jureca-matrix.sbatch", late, "#SBATCH --time=00:05:00", f"line {first}",
         "ignores it")


def test_a_batch_script_with_sbatch_lines_first_only_after_comments_and_blanks_passes(tmp_path: Path):
    (tmp_path / "job.sbatch").write_text("#!/bin/bash\n# what it does\n\n#SBATCH --nodes=1\n# more\n\n"
                                         "#SBATCH --time=00:01:00\n\nsrun hostname\n# #SBATCH in a comment is fine\n")
    assert problems(tmp_path) == []


# --- rule 2: merge-conflict markers ----------------------------------------------------------------------------------

MARKERS = "<" * 7 + " HEAD\nmine\n" + "=" * 7 + "\ntheirs\n" + ">" * 7 + " their-branch\n"


@pytest.mark.parametrize("file", ["slurm/fastai.sbatch", "book/cats.md", "solutions/cats.py", "slurm/sites/local.toml",
                                  "_toc.yml", "venv-template/requirements.txt", "exercises/tunnel.sh"])
def test_merge_conflict_markers_are_caught_in_every_kind_of_course_file(course: Path, file: str):
    path = course / file
    before = len(path.read_text().splitlines())
    path.write_text(path.read_text() + MARKERS)
    found = [p for p in problems(course) if "merge-conflict marker" in p]
    assert found == [f"{file}:{before + n}: merge-conflict marker `{marker}` left in the file: resolve the conflict "
                     f"(keep the right lines) and delete the marker lines"
                     for n, marker in ((1, "<" * 7), (3, "=" * 7), (5, ">" * 7))], found


def test_conflict_markers_in_environments_and_builds_are_not_course_files(tmp_path: Path):
    for folder in (".venv/lib", "_build/html", "venv-template/venv/lib"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.py").write_text(MARKERS)
    (tmp_path / "notes.md").write_text("A line that mentions " + "<" * 7 + " inside the text is no marker.\n")
    assert problems(tmp_path) == []


# --- rule 3: a GPU partition without GPUs ----------------------------------------------------------------------------

GRES = ("#SBATCH --gres=gpu:4                    # the node's 4 GPUs: without this line the job gets none and "
        "trains on CPUs")
PARTITION = "#SBATCH --partition=dc-gpu              # the queue of JURECA-DC's GPU nodes"


def test_a_gpu_partition_job_without_gres_is_caught(course: Path):
    only_without(course, [GRES], PARTITION, "GPU partition `dc-gpu`", "--gres=gpu:4")


def test_a_job_without_gres_that_the_site_profile_sends_to_a_gpu_partition_is_caught(course: Path):
    only_without(course, [GRES, PARTITION], "#SBATCH --account=training2441          # the project whose compute "
                 "time pays for the job", "site profile slurm/sites/", "`dc-gpu`", "--gres=gpu:4")


def test_gpus_per_node_asks_for_gpus_too_and_a_cpu_partition_needs_none(course: Path):
    edit(course / "slurm/fastai.sbatch", GRES, "#SBATCH --gpus-per-node=4")
    edit(course / "slurm/jureca-matrix.sbatch",
         "#SBATCH --gres=gpu:4                    # the node's 4 GPUs: JSC gives a job GPUs only when it asks for them",
         "")
    edit(course / "slurm/jureca-matrix.sbatch",
         "#SBATCH --partition=dc-gpu              # the queue of JURECA-DC's GPU nodes", "#SBATCH --partition=dc-cpu")
    assert problems(course) == []


# --- rule 4: more than one core per task, no SRUN_CPUS_PER_TASK ------------------------------------------------------

EXPORT = 'export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"'


def test_a_multicore_job_without_the_srun_cpus_export_is_caught(course: Path):
    only_without(course, [EXPORT], "srun python cats.py", "128 cores per task", "--cpus-per-task=128", EXPORT)


def test_an_export_after_srun_is_too_late(course: Path):
    script = course / "slurm/fastai.sbatch"
    edit(script, EXPORT, "")
    edit(script, "srun python cats.py", "srun python cats.py\n" + EXPORT)
    only(problems(course), "slurm/fastai.sbatch", line_of(script, "srun python cats.py"), "SRUN_CPUS_PER_TASK")


def test_a_job_that_sets_no_cores_gets_the_site_profiles_cores_and_needs_the_export_too(course: Path):
    only_without(course, [EXPORT, "#SBATCH --cpus-per-task=128             # all 128 cores of the node: the data "
                          "loaders decode images in parallel"], "srun python cats.py",
                 "cpus_per_task = 128 of the site profiles")


def test_a_one_core_job_needs_no_export(course: Path):
    edit(course / "slurm/jureca-matrix.sbatch", EXPORT, "")
    assert problems(course) == []


# --- rule 6: several tasks per node, each picking cuda:<local id> -----------------------------------------------------

COURSE_DEVICE = "device = torch.device(f\"cuda:{int(os.environ.get('SLURM_LOCALID', 0)) % torch.cuda.device_count()}\""
OLD_DEVICE = "device = torch.device(f\"cuda:{os.environ.get('SLURM_LOCALID', 0)}\""


@pytest.mark.parametrize("program", ["exercises/time_loaders.py", "solutions/time_loaders.py"])
def test_a_program_picking_the_gpu_by_local_id_for_several_tasks_per_node_is_caught(course: Path, program: str):
    """time_loaders.py as the course had it, started 4 per node by loaders.sbatch: on JURECA-DC tasks 1-3 fail."""
    wrong = edit(course / program, COURSE_DEVICE, OLD_DEVICE)
    srun = line_of(course / "slurm/loaders.sbatch", 'srun python time_loaders.py "$packed" --images "$images" "$@"')
    only(problems(course), "slurm/loaders.sbatch", srun, "4 tasks per node", f"{program}:{wrong}", "psslurm",
         "invalid device ordinal", "device_count")


def test_a_local_id_is_fine_where_the_script_keeps_every_gpu_visible_or_one_task_runs_per_node(course: Path):
    edit(course / "solutions/time_loaders.py", COURSE_DEVICE, OLD_DEVICE)
    script = course / "slurm/loaders.sbatch"
    text = script.read_text()
    script.write_text(text.replace("\nsrun python", "\nexport CUDA_VISIBLE_DEVICES=0,1,2,3   # as JSC's run_loader.sh"
                                                   "\nsrun python", 1))
    assert problems(course) == []
    script.write_text(text.replace("--ntasks-per-node=4", "--ntasks-per-node=1"))
    assert not [p for p in problems(course) if "invalid device ordinal" in p]


# --- rule 5: commands that name a file that is not where they run ----------------------------------------------------

def test_the_published_sbatch_fastai_sbatch_from_the_exercises_folder_is_caught(course: Path):
    """JSC's slides: "submit from the folder that holds cats.py: sbatch fastai.sbatch" (the script is in slurm/)."""
    page = replaced(course / "book/cats.md", "$ cd ~/course/exercises\n$ sbatch ../slurm/fastai.sbatch\n",
                    "$ cd ~/course/exercises\n$ sbatch fastai.sbatch\n")
    only(problems(course), "book/cats.md", line_of(page, "$ sbatch fastai.sbatch"), "`sbatch fastai.sbatch`",
         "~/course/exercises", "write ../slurm/fastai.sbatch")


def test_a_usage_comment_naming_a_missing_script_is_caught(course: Path):
    script = course / "slurm/fastai.sbatch"
    line = edit(script, "#     cd ~/course/exercises && sbatch ../slurm/fastai.sbatch",
                "#     cd ~/course/exercises && sbatch fastai.sbatch")
    only(problems(course), "slurm/fastai.sbatch", line, "write ../slurm/fastai.sbatch")


def test_a_program_named_in_a_docstring_that_is_not_beside_it_is_caught(course: Path):
    replaced(course / "exercises/matrix.py", "on the login node: python matrix.py",
             "on the login node: python matrix_cpu.py")
    only(problems(course), "exercises/matrix.py", 1, "`python matrix_cpu.py`", "no file of that name")


def test_a_cd_into_a_folder_the_course_lacks_is_caught(course: Path):
    page = replaced(course / "book/venv.md", "```bash\ncd ~/course\nbash venv-template/setup.sh",
                    "```bash\ncd ~/course/venv\nbash venv-template/setup.sh")
    only(problems(course), "book/venv.md", line_of(page, "cd ~/course/venv"), "no folder ~/course/venv")


def test_a_cd_in_an_earlier_block_of_the_page_holds_for_the_later_blocks(course: Path):
    """The matrix lesson's `python matrix.py` block, moved after a block that went to ~/course, misses matrix.py."""
    page = course / "book/matrix.md"
    text = page.read_text()
    block = "```bash\ncd ~/course/exercises\nmodule load Stages/2024\nmodule load GCC OpenMPI PyTorch\npython matrix.py\n```\n"
    assert block in text
    moved = block.replace("cd ~/course/exercises\n", "")
    page.write_text(text.replace(block, "") + "\n```bash\ncd ~/course\n```\n\n" + moved)
    only(problems(course), "book/matrix.md", len(page.read_text().splitlines()) - 1, "runs in ~/course,",
         "write exercises/matrix.py")


def test_placeholders_job_outputs_own_files_and_earlier_results_are_not_reported(tmp_path: Path):
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises/pack.py").write_text('"""python pack.py IMAGES packed"""\n')
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book/page.md").write_text(
        "# A page\n\n```console\n$ sbatch ../slurm/YOUR_SCRIPT.sbatch\nSubmitted batch job 412169\n"
        "$ cat output.412169\n$ cat error.<jobid>\n```\n\n"
        "```bash\ncat ~/.ssh/config           # the reader's own file\n"
        "python pack.py ~/.fastai/data/images packed\ncat packed/names.txt\n"
        "mkdir -p ~/course/results && cp $HOME/notes.txt ~/course/results/\ncat ~/course/results/notes.txt\n"
        "cat models/model.pth\nscancel <jobid>\n```\n")
    assert problems(tmp_path) == []
    # the same page without the earlier steps: their results are missing now
    page = tmp_path / "book/page.md"
    page.write_text(page.read_text().replace("python pack.py ~/.fastai/data/images packed\n", "")
                    .replace("mkdir -p ~/course/results && cp $HOME/notes.txt ~/course/results/\n", ""))
    assert [p.split(": ", 1)[1].split(" runs in")[0] for p in problems(tmp_path)] == [
        "`cat packed/names.txt`", "`cat ~/course/results/notes.txt`"]
