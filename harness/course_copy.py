"""A scratch copy of the course: what git would commit, never environments, builds or job outputs.

Checks that must not touch the working tree (the offline book build, the student's view with the solutions copied
in, a student's walk through the book's commands) run in such a copy.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# What a copy leaves out when the course is not a git checkout (an unpacked tarball)
LEAVE_OUT = (".git", ".venv", ".venv-*", "venv", "_build", "artifacts", "__pycache__", ".pytest_cache", "*.pyc",
             "models", "runs", ".ipynb_checkpoints", "node_modules", "slurm-out", ".reports")


def copy_course(root: Path, dest: Path) -> Path:
    """Copy the tracked and new, unignored files of `root` into `dest`; returns `dest`."""
    # safe.directory: the checkout may belong to another user (root cloned it, the course user copies it)
    listing = subprocess.run(["git", "-c", f"safe.directory={root}", "-C", str(root), "ls-files", "-z", "--cached",
                              "--others", "--exclude-standard"], capture_output=True, text=True)
    if listing.returncode != 0:
        shutil.copytree(root, dest, ignore=shutil.ignore_patterns(*LEAVE_OUT), symlinks=True, dirs_exist_ok=True)
        return dest
    for name in filter(None, listing.stdout.split("\0")):
        source = root / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest
