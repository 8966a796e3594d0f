"""`pytest --target exercises` tells a student, per exercise, "done" or what is missing, in one line each.

The checks run in a child pytest on a small test folder made here, against the real exercises/ and solutions/, so
they prove the report a student sees without waiting for the slow exercise tests.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.exercises import all_exercises

ROOT = Path(__file__).resolve().parent.parent

# The first three exercises of the registry, whichever they are: each gets a stand-in check module under the name of
# its own test module (harness.exercises.exercise_of_test maps a test to its exercise by that name).
FIRST, SECOND, THIRD = all_exercises()[:3]
PROGRAM = next(name for name in FIRST.programs if name.endswith(".py"))  # the first exercise's Python file
TODO = re.search(r'NotImplementedError\("(TODO[^"]*)"\)', (ROOT / "exercises" / PROGRAM).read_text())[1]
SKIPPED = "`/usr/sbin/sshd` not found: install the Debian package openssh-server"  # any reason a check skips

CHECKS = {
    "conftest.py": '''
        import os
        from pathlib import Path
        import pytest

        @pytest.fixture(scope="session")
        def target_dir(target, course_root):
            """SELFCHECK_TREE stands in for a student whose exercises/ holds finished work."""
            tree = os.environ.get("SELFCHECK_TREE")
            return Path(tree) if tree else course_root / target
    ''',
    Path(FIRST.tests[0]).name: f'''
        import subprocess, sys

        def test_the_program_runs(target_dir, tmp_path):
            run = subprocess.run([sys.executable, str(target_dir / "{PROGRAM}")], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, f"{PROGRAM} failed:\\n{{run.stderr}}"
    ''',
    Path(SECOND.tests[0]).name: '''
        def test_accuracy_bar(target_dir):
            accuracy = 0.42 if target_dir.name == "exercises" else 0.95
            assert accuracy >= 0.9, f"validation accuracy {accuracy} is below the bar 0.9\\nsecond line"
    ''',
    Path(THIRD.tests[0]).name: f'''
        import os
        import pytest

        def test_the_third_check(target_dir):
            if os.environ.get("SELFCHECK_SKIP"):
                pytest.skip("{SKIPPED}")
            assert target_dir.name != "exercises", "TODO: the third exercise is untouched"
    ''',
    "test_book_unrelated.py": '''
        def test_not_about_the_exercises():
            raise AssertionError("a test that ignores --target must not run in --target exercises mode")
    ''',
}


def run_checks(tmp_path: Path, *args: str, tree: Path | None = None,
               **env_extra: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "checks"
    folder.mkdir(exist_ok=True)
    for name, text in CHECKS.items():
        (folder / name).write_text(textwrap.dedent(text))
    (folder / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    if tree is not None:
        env["SELFCHECK_TREE"] = str(tree)
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-p", "no:cacheprovider", "-ra", "-c",
         str(folder / "pytest.ini"), "--rootdir", str(folder), str(folder), *args],
        capture_output=True, text=True, env=env, cwd=folder, timeout=600,
    )


def summary(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Your exercises" in line)
    return [line for line in lines[start + 1:] if not line.startswith("=")]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_untouched_exercises_are_each_not_done_in_one_line(tmp_path: Path, workers: list[str]) -> None:
    run = run_checks(tmp_path, "--target", "exercises", *workers)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = summary(run.stdout)
    assert lines[:3] == [
        f"{FIRST.heading}: not done: {TODO}",
        f"{SECOND.heading}: not done: validation accuracy 0.42 is below the bar 0.9",
        f"{THIRD.heading}: not done: TODO: the third exercise is untouched",
    ], run.stdout
    assert "Traceback" not in run.stdout and "raise NotImplementedError" not in run.stdout, run.stdout
    assert "3 failed" in run.stdout and "ignores --target" not in run.stdout, "only the exercise checks run"
    assert len(run.stdout.splitlines()) < 30, f"the report should be short:\n{run.stdout}"


def test_finished_exercises_are_done(tmp_path: Path) -> None:
    run = run_checks(tmp_path, "--target", "exercises", tree=ROOT / "solutions")
    assert run.returncode == 0, run.stdout + run.stderr
    assert summary(run.stdout) == [f"{FIRST.heading}: done", f"{SECOND.heading}: done", f"{THIRD.heading}: done"], \
        run.stdout


def test_a_check_that_could_not_run_is_not_checked_and_fails_the_run(tmp_path: Path) -> None:
    """Nothing failed, but the third check could not run: that exercise is not done, and the run must say so."""
    run = run_checks(tmp_path, "--target", "exercises", tree=ROOT / "solutions", SELFCHECK_SKIP="1")
    assert run.returncode == 1, run.stdout + run.stderr
    assert summary(run.stdout)[:3] == [
        f"{FIRST.heading}: done", f"{SECOND.heading}: done", f"{THIRD.heading}: not checked: {SKIPPED}",
    ], run.stdout


def test_long_tracebacks_come_back_on_request(tmp_path: Path) -> None:
    run = run_checks(tmp_path, "--target", "exercises", "--tb=long", "-k", Path(FIRST.tests[0]).stem)
    assert "Traceback" in run.stdout and "NotImplementedError" in run.stdout, run.stdout
    assert f"{FIRST.heading}: not done: {TODO}" in run.stdout


def test_solutions_mode_has_no_student_summary(tmp_path: Path) -> None:
    run = run_checks(tmp_path, "-k", "not unrelated")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Your exercises" not in run.stdout and "3 passed, 1 deselected" in run.stdout, run.stdout


def test_the_first_exercises_own_checks_report_not_done_for_the_untouched_exercise() -> None:
    """The first exercise's real test module, run as a student would: `pytest --target exercises tests/test_X.py`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--target", "exercises",
                          FIRST.tests[0]], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = summary(run.stdout)
    assert lines and lines[0].startswith(f"{FIRST.heading}: not done: TODO"), run.stdout
    assert "Traceback" not in run.stdout, run.stdout


@pytest.mark.parametrize(("text", "line"), [
    # the exception a student's untouched exercise raises: the whole message, closing quote included
    ("Traceback ...\nNotImplementedError: TODO: set `path` to untar_data(URLs.PETS) / 'images'\n",
     "TODO: set `path` to untar_data(URLs.PETS) / 'images'"),
    # a check that needs an earlier exercise names that first, not the earlier exercise's TODO
    ("Failed: first finish exercise 2: the logs of its training run, which failed\n"
     "NotImplementedError: TODO: the label function must return True\n",
     "first finish exercise 2: the logs of its training run, which failed"),
    # a TODO quoted in a source line: the code's closing quote and bracket go
    ('    raise SystemExit("TODO: write the ssh command")\n', "TODO: write the ssh command"),
])
def test_what_is_missing_is_one_whole_line(text: str, line: str) -> None:
    from harness.selfcheck import what_is_missing
    assert what_is_missing(text, "AssertionError: something") == line


@pytest.mark.parametrize(("crash", "text", "line"), [
    # a bare assert of a check without a message: the check's name in words, not Python's comparison
    ("AssertionError: assert 0.0 > 0", "", "the check 'gpu version prints its speed' failed (run with --tb=long to "
     "see why)"),
    # a library's words (torch.testing) where the student's file raised: that file's line and its exception
    ("Tensor-likes are not close!", 'Traceback (most recent call last):\n  File "/c/exercises/product.py", line 12, '
     'in <module>\n    product = first @ second[:2]\nRuntimeError: mat1 and mat2 shapes cannot be multiplied\n',
     "product.py:12 raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    # a check's own message stays as it is
    ("AssertionError: product.py printed the element-wise product (first * second)\nassert not [...]", "",
     "product.py printed the element-wise product (first * second)"),
])
def test_raw_python_never_reaches_the_student(crash: str, text: str, line: str) -> None:
    from harness.selfcheck import what_is_missing
    assert what_is_missing(text, crash, "test_gpu_version_prints_its_speed[cpu]") == line
