"""Every check that counts for a student's self-check fails with the course's words, never raw Python."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.check_messages import raw_asserts
from harness.exercises import ROOT, all_exercises

CHECK_MODULES = sorted({test for exercise in all_exercises() for test in exercise.tests})


@pytest.mark.parametrize("module", CHECK_MODULES)
def test_every_assert_of_a_self_check_has_words(module: str) -> None:
    found = raw_asserts(ROOT / module)
    assert not found, f"{len(found)} assert(s) of {module} would show a student raw Python; give each a message " \
        "in the course's words:\n" + "\n".join(found)


def test_the_rule_catches_raw_asserts_and_spares_the_course_team_s_own(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "import pytest\n\n"
        "def test_student(run):\n"
        "    assert run.returncode == 0\n"                          # no message: caught
        "    assert run.ok, run.stderr\n"                           # output only: caught
        "    assert run.x, 'matrix.py printed no matrix'\n"        # words: fine
        "    assert run.y, f'{run} printed {run.y}'\n"              # words: fine
        "    assert not problems, problems[0]\n\n"                  # a check's own line: fine
        "@pytest.mark.broken_copy\n"
        "def test_harness(run):\n"
        "    assert run.returncode\n")                              # not part of a self-check: fine
    assert raw_asserts(module) == ["test_example.py:4 assert run.returncode == 0", "test_example.py:5 assert run.ok"]
