"""Part local-suite: wall time of the whole local `pytest`, serial vs `pytest -n auto`, and the slowest tests.

Both runs are subprocesses in the repository with the same Python; per-test times come from a JUnit XML file.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.report import Check, Part, Skipped

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 1.6
SLOWEST = 10


def _label(case: ET.Element) -> str:
    return f"{case.get('classname', '')}::{case.get('name', '')}"


def _problem(case: ET.Element) -> ET.Element | None:
    """The test's <failure> or <error> element (both count as failed), None when it did not fail."""
    failure = case.find("failure")
    return failure if failure is not None else case.find("error")


def outcome_counts(junit: Path) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for case in ET.parse(junit).iter("testcase"):
        if _problem(case) is not None:
            counts["failed"] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def failures(junit: Path) -> list[str]:
    """`test: first line of its message` for every failed test: a timing run must not hide a failure."""
    found = []
    for case in ET.parse(junit).iter("testcase"):
        problem = _problem(case)
        if problem is not None:
            message = (problem.get("message") or "").strip().splitlines()
            found.append(f"{_label(case)}: {message[0][:200] if message else ''}")
    return found


def slowest(junit: Path, n: int = SLOWEST) -> list[tuple[str, float]]:
    cases = [(_label(c), float(c.get("time") or 0)) for c in ET.parse(junit).iter("testcase")]
    return sorted(cases, key=lambda c: -c[1])[:n]


def timed_pytest(extra: list[str], junit: Path) -> tuple[float, dict[str, int]]:
    """The suite as run-tests.sh runs it: as the course user when we are root, without the root-only checks."""
    from harness.users import as_course_user

    command = as_course_user([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not root",
                              f"--junitxml={junit}", *extra])
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    seconds = time.perf_counter() - start
    if not junit.exists():
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise Skipped(f"pytest {' '.join(extra)} produced no report (exit {done.returncode}): {tail}")
    return seconds, outcome_counts(junit)


def run(workers: str = "auto", select: list[str] = ()) -> Part:
    """`select`: pytest arguments (paths, -k ...) to time a part of the suite instead of all of it."""
    try:
        import xdist  # noqa: F401
    except ImportError:
        raise Skipped("pytest-xdist is not installed (pip install -r requirements.txt)") from None
    if not (ROOT / "tests").is_dir():
        raise Skipped("no tests/ folder")
    what = f"`pytest {' '.join(select)}`" if select else "the whole local `pytest`"
    part = Part("local-suite", f"{what}, serial vs `-n {workers}`",
                headers=["run", "seconds", "passed", "failed", "skipped", "speed-up"])
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        if os.geteuid() == 0:  # the course user writes the JUnit files here
            from harness.users import course_user

            os.chmod(tmp, 0o755)
            shutil.chown(tmp, course_user())
        serial, serial_counts = timed_pytest([*select], Path(tmp) / "serial.xml")
        parallel, parallel_counts = timed_pytest([*select, "-n", workers], Path(tmp) / "parallel.xml")
        top = slowest(Path(tmp) / "serial.xml")
        failed = {run: failures(Path(tmp) / f"{run}.xml") for run in ("serial", "parallel")}
    part.rows = [["pytest (serial)", serial, *serial_counts.values(), 1.0],
                 [f"pytest -n {workers}", parallel, *parallel_counts.values(), serial / parallel]]
    part.checks.append(Check(f"-n {workers} speed-up", serial / parallel, TARGET_SPEEDUP, unit="x"))
    for run, names in failed.items():
        part.notes += [f"failed in the {run} run: {name}" for name in names]
    part.tables.append((f"The {len(top)} slowest tests of the serial run", ["test", "seconds", "share of serial"],
                        [[name, seconds, f"{seconds / serial:.0%}"] for name, seconds in top]))
    return part
