"""The course user: the normal (non-root) account that submits jobs and runs student checks on this machine.

On JURECA nobody submits as root, and a student's laptop has no root either, so the local test cluster only lets
its course users in (reservation and accounting), and the test runner hands the work to one of them when it is
started as root. slurm/local-cluster/start.sh writes the names it set up into `$COURSE_SLURM_STATE/etc/users`.
"""
from __future__ import annotations

import os
import pwd
from pathlib import Path

STATE = Path(os.environ.get("COURSE_SLURM_STATE", "/tmp/course-slurm"))
DEFAULT_USER = "course"


def course_users(state: Path = STATE) -> list[str]:
    """The normal users the local cluster lets in (first: the one the tests use)."""
    listing = state / "etc" / "users"
    names = listing.read_text().split() if listing.is_file() else []
    return names or [os.environ.get("COURSE_USER") or DEFAULT_USER]


def course_user() -> str:
    return course_users()[0]


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def as_course_user(argv: list[str]) -> list[str]:
    """`argv` as the course user would run it: unchanged for a normal user, through runuser for root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", course_user(), "--", *argv]
