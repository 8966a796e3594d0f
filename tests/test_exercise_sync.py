"""Exercises and solutions agree outside the student's regions, and the check really catches a drift."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.exercise_sync import MarkerError, all_drifts, drift, shared_lines, twins

ROOT = Path(__file__).resolve().parent.parent
PAIRS = twins(ROOT / "solutions", ROOT / "exercises")


def test_every_exercise_has_a_solution_twin() -> None:
    exercises = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_file())
    assert exercises, "exercises/ is empty"
    assert sorted(e.name for _, e in PAIRS) == exercises, "every file in exercises/ needs a twin in solutions/"


@pytest.mark.parametrize("solution,exercise", PAIRS, ids=[s.name for s, _ in PAIRS])
def test_exercise_matches_its_solution_outside_the_student_regions(solution: Path, exercise: Path) -> None:
    problem = drift(solution, exercise)
    assert problem is None, problem
    assert any("<your work #" in line.text for line in shared_lines(exercise)), f"{exercise} marks no student region"


SOLUTION = """\
import torch

def main():
    # --- your work ---
    device = torch.device("cpu")
    # --- end of your work ---
    print(device)
"""

EXERCISE = """\
import torch

def main():
    # --- your work ---
    # TODO: pick the device
    raise NotImplementedError("TODO: pick the device")
    # --- end of your work ---
    print(device)
"""


def write_pair(tmp_path: Path, solution: str, exercise: str) -> tuple[Path, Path]:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    sol, exe = tmp_path / "solutions" / "job.py", tmp_path / "exercises" / "job.py"
    sol.write_text(solution)
    exe.write_text(exercise)
    return sol, exe


def test_different_work_inside_the_regions_is_in_sync(tmp_path: Path) -> None:
    write_pair(tmp_path, SOLUTION, EXERCISE)
    assert all_drifts(tmp_path / "solutions", tmp_path / "exercises") == []


def test_a_solution_changed_outside_its_region_is_caught_with_file_and_line(tmp_path: Path) -> None:
    sol, exe = write_pair(tmp_path, SOLUTION.replace("print(device)", "print('device:', device)"), EXERCISE)
    problems = all_drifts(tmp_path / "solutions", tmp_path / "exercises")
    assert len(problems) == 1
    assert f"{sol}:7" in problems[0] and f"{exe}:8" in problems[0]
    assert "print('device:', device)" in problems[0]


def test_a_line_added_only_to_the_solution_is_caught(tmp_path: Path) -> None:
    sol, _ = write_pair(tmp_path, SOLUTION + "main()\n", EXERCISE)
    problem = drift(sol, tmp_path / "exercises" / "job.py")
    assert problem is not None and f"{sol}:8" in problem and "main()" in problem


def test_a_missing_region_is_caught(tmp_path: Path) -> None:
    sol, exe = write_pair(tmp_path, SOLUTION, "import torch\n\ndef main():\n    device = None\n    print(device)\n")
    problem = drift(sol, exe)
    assert problem is not None and "1 student region(s)" in problem and "has 0" in problem


def test_unpaired_markers_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("# --- your work ---\nx = 1\n")
    with pytest.raises(MarkerError, match=r"broken.py:1: region opened here is never closed"):
        shared_lines(path)
    path.write_text("x = 1\n# --- end of your work ---\n")
    with pytest.raises(MarkerError, match=r"broken.py:2: .* without an opening"):
        shared_lines(path)
