"""`pytest --target exercises`: a student's own attempt, checked by the solutions' tests, reported per exercise.

A student wants to know "is exercise 2 done, and if not, what is missing?", not to read a traceback. In that mode
this plugin
* keeps only the checks that count for an exercise: the tests of the modules each exercise module lists
  (`Exercise.tests` in harness/exercises/), except those that need the course's Slurm cluster or root; the book
  build, sync and browser tests say nothing about a student's work;
* shortens every failure to one line: the first `TODO` the exercise raised, else the first line of the
  assertion message (pass `--tb=long` to see the full traceback again);
* ends with a section "Your exercises": one line per exercise. "done" only when every check of the exercise ran
  and passed; "not done: <what is missing>" when one failed; "not checked: <why>, <how to run it>" when one could
  not run here. A run with an exercise not checked does not pass either: a check that did not run proves nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from _pytest._code.code import ReprFileLocation

from harness.exercises import all_exercises, exercise_of_test
from harness.failures import NEEDS_EARLIER, TODO_RAISED, first_found, raised

TODO_ANYWHERE = re.compile(r"\b(TODO\b.*)")


def exercise_mode(config: pytest.Config) -> bool:
    return config.getoption("--target", default="solutions") == "exercises"


def checks_the_target(item: pytest.Item) -> bool:
    """Does the test count for an exercise's self-check? Its module is listed by an exercise, and it runs on a
    student's laptop: not on the course team's Slurm cluster (the instructor's `--cluster` run covers that), not
    only as root (each such check has a twin for normal users), not a check of the untouched starting point, and
    not a proof that a check bites on a broken copy of the solutions (it says nothing about the student's files)."""
    if any(item.get_closest_marker(name) is not None for name in ("slurm", "root", "starting_point", "broken_copy")):
        return False
    return exercise_of_test(item.nodeid) is not None


# A first line that is Python's or a library's words, not the course's: a bare `assert`, a repr, torch.testing
RAW = re.compile(r"^(assert\b|[\[{(<'\"]|b'|Tensor-likes|CompletedProcess\(|\w+\(.*=.*\)$)")


def what_is_missing(text: str, crash_message: str, check: str = "") -> str:
    """One line for the student: the TODO their exercise raised, else the check's own message; where that is raw
    Python (a bare assert, a repr), the line of a course file that raised and its exception, else the check's name
    in words. Never a traceback or a library's message."""
    earlier = first_found(text, (NEEDS_EARLIER, TODO_RAISED))
    if earlier:
        return earlier
    match = TODO_ANYWHERE.search(text)
    if match:  # a TODO quoted in source code: drop the code's closing quotes and brackets
        return match.group(1).strip().rstrip("\"')").strip()
    first = next((line.strip() for line in crash_message.splitlines() if line.strip()), "")
    first = re.sub(r"^(AssertionError|Failed):\s*", "", first)
    if first and not RAW.match(first):
        return first
    exception = raised(text)
    if exception:
        return f"{exception[0]} raised {exception[1]}"
    words = check.split("[", 1)[0].removeprefix("test_").replace("_", " ")
    return f"the check '{words}' failed (run with --tb=long to see why)" if words else \
        "the check failed (run with --tb=long to see why)"


class OneLineFailure:
    """A failure report that prints as a single line (and keeps `reprcrash` for pytest's short summary)."""

    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.reprcrash = ReprFileLocation(path, lineno, message)

    def toterminal(self, tw) -> None:  # noqa: ANN001 (pytest's TerminalWriter)
        tw.line(self.reprcrash.message, red=True)

    def __str__(self) -> str:
        return self.reprcrash.message


@dataclass
class Verdict:
    passed: int = 0
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.missing:
            return f"not done: {self.missing[0]}"
        if self.skipped:
            more = f" (and {len(self.skipped) - 1} more check(s) that could not run)" if len(self.skipped) > 1 else ""
            return f"not checked: {self.skipped[0]}{more}"
        return "done" if self.passed else "not checked: no check ran"

    @property
    def done(self) -> bool:
        return self.line() == "done"


def pytest_configure(config: pytest.Config) -> None:
    if not exercise_mode(config):
        return
    short = config.option.tbstyle == "auto"
    if short:
        config.option.tbstyle = "no"  # the one-line verdicts replace the traceback wall
    if not hasattr(config, "workerinput"):  # tally on the controlling process only (xdist workers send reports)
        config.pluginmanager.register(Tally(short), "course-selfcheck-tally")


def pytest_ignore_collect(collection_path, config: pytest.Config) -> bool | None:  # noqa: ANN001 (a pathlib.Path)
    """Under `--target exercises` only the test modules that an exercise lists are collected. The others (the book's
    build, the lesson pages) import packages that a course venv on JURECA does not have (jupytext, nbclient), and
    their import error at collection would stop a student's `python -m pytest --target exercises -k KEY`."""
    if not exercise_mode(config) or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return True if exercise_of_test(collection_path.name) is None else None  # matched by file name, as its items


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not exercise_mode(config):
        return
    keep = [item for item in items if checks_the_target(item)]
    drop = [item for item in items if not checks_the_target(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """On the process that ran the test (an xdist worker, maybe): note its exercise and what is missing."""
    outcome = yield
    if not exercise_mode(item.config):
        return
    report: pytest.TestReport = outcome.get_result()
    exercise = exercise_of_test(item.nodeid)
    if exercise is None:
        return
    report.user_properties.append(("exercise", exercise.key))
    if report.failed:
        text = "\n".join([report.longreprtext] + [content for _, content in report.sections])
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "") or report.longreprtext
        report.user_properties.append(("missing", what_is_missing(text, crash, item.name)))


class Tally:
    """Collects the verdicts on the controlling process and writes the "Your exercises" section."""

    def __init__(self, short: bool) -> None:
        self.short = short
        self.verdicts: dict[str, Verdict] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Tally the verdict and shorten the failure before the terminal reporter keeps it."""
        props = dict(report.user_properties)
        if "exercise" not in props:
            return
        verdict = self.verdicts.setdefault(props["exercise"], Verdict())
        missing = props.get("missing", "the check failed")
        if report.failed:
            verdict.missing.append(missing)
            if self.short:
                path, lineno, _ = report.location
                report.longrepr = OneLineFailure(path, (lineno or 0) + 1, missing)
                report.sections = []
        elif report.skipped and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            verdict.skipped.append(reason.removeprefix("Skipped: "))
        elif report.passed and report.when == "call":
            verdict.passed += 1

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001 (pytest's TerminalReporter)
        terminalreporter.write_sep("=", "Your exercises")
        if not self.verdicts:
            terminalreporter.write_line("no exercise check ran (did -k or a file name leave them all out?)")
            return
        for exercise in (e for e in all_exercises() if e.key in self.verdicts):
            title = exercise.heading
            line = self.verdicts[exercise.key].line()
            terminalreporter.write_line(f"{title}: {line}", green=line.startswith("done"),
                                        red=line.startswith("not done"), yellow=line.startswith("not checked"))
        if self.short and any(v.missing for v in self.verdicts.values()):
            terminalreporter.write_line("(each failure is cut to one line; add --tb=long to see the full traceback)")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """An exercise that could not be checked fails the run, even when nothing failed."""
        if exitstatus == 0 and any(not v.done and not v.missing for v in self.verdicts.values()):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
