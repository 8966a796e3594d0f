"""What every rule of the course checker shares: a problem as `file:line: message`, and the course's files."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TEXT_SUFFIXES = frozenset({".sbatch", ".sh", ".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".in", ".lua",
                           ".example", ".ini", ".conf", ".dot", ".rst"})
SKIP_DIRS = frozenset({".venv", "venv", "_build", "node_modules", "__pycache__", "slurm-out", "artifacts", "models",
                       "runs", "site-packages"})
KEEP_HIDDEN = frozenset({".ci", ".github"})  # hidden folders that hold course files


@dataclass(frozen=True, order=True)
class Problem:
    file: str  # relative to the course root
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Report:
    problems: list[Problem]
    files: int  # course files looked at

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems] or [f"course files: {self.files} checked, no problems"]


def relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def all_files(root: Path) -> list[Path]:
    """Every file of the course, outside environments, builds and hidden folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and (not d.startswith(".") or d in KEEP_HIDDEN))
        found += [Path(folder) / name for name in sorted(files)]
    return found


def course_files(root: Path) -> list[Path]:
    """The course's text files: every file with a text suffix outside environments, builds and hidden folders."""
    return [path for path in all_files(root) if path.suffix in TEXT_SUFFIXES]
