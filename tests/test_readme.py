"""The README's tables follow the exercise registry (harness/exercises/): a new exercise or cluster job that the
README does not show, or a row for one that is gone, fails here."""
from __future__ import annotations

import re

from harness.exercises import ROOT, all_exercises, cluster_jobs

README = (ROOT / "README.md").read_text()
CHECK_LINE = re.compile(r"^\.venv/bin/pytest --target exercises -k (\S+)\s+# exercise (\d+)\b", re.MULTILINE)
COST_ROW = re.compile(r"^\| (\d+) \| (\w+)\b[^|]*\| (\d+) \|", re.MULTILINE)  # | day | job ... | nodes |


def test_the_self_check_commands_name_every_exercise_by_key_and_number():
    shown = {key: int(number) for key, number in CHECK_LINE.findall(README)}
    wanted = {exercise.key: exercise.number for exercise in all_exercises()}
    assert shown == wanted, f"README's `--target exercises -k KEY  # exercise N` lines show {shown}, the registry " \
                            f"holds {wanted}"


def test_the_cost_table_has_a_row_per_cluster_job_on_its_day():
    shown = {(int(day), job) for day, job, _ in COST_ROW.findall(README)}
    wanted = {(exercise.day, name) for name, (exercise, _) in cluster_jobs().items()}
    assert shown == wanted, f"README's cost table shows (day, job) {sorted(shown)}, the registry has {sorted(wanted)}"


def test_a_broken_copy_of_the_readme_is_caught():
    """The two readers above see a row or line taken out."""
    first = next(iter(cluster_jobs()))
    without_row = re.sub(rf"^\| \d+ \| {first}\b.*\n", "", README, flags=re.MULTILINE)
    assert len(COST_ROW.findall(without_row)) == len(COST_ROW.findall(README)) - 1
    key = all_exercises()[0].key
    without_line = re.sub(rf"^\.venv/bin/pytest --target exercises -k {key}\b.*\n", "", README, flags=re.MULTILINE)
    assert len(CHECK_LINE.findall(without_line)) == len(CHECK_LINE.findall(README)) - 1
