"""The one reader of batch scripts and sbatch command lines: what sbatch makes of them.

Used by the course checker (harness/coursecheck/: the rules on the course's scripts and the book's `sbatch`
commands), by the exercises' cluster checks (an option as the job got it) and by the harness.
"""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.bookcommands import logical_lines, strip_comment

SHORT_OPTIONS = {"-p": "partition", "-c": "cpus-per-task", "-G": "gpus", "-A": "account", "-N": "nodes",
                 "-n": "ntasks", "-t": "time", "-J": "job-name", "-o": "output", "-e": "error", "-D": "chdir"}
# sbatch's short options that take a value, and its long options that take none
SHORT_WITH_VALUE = frozenset("AabcCdDeGiJLmMnNopqStwx")
LONG_FLAGS = frozenset({"parsable", "hold", "wait", "exclusive", "requeue", "no-requeue", "test-only", "verbose",
                        "quiet", "help", "usage", "version", "overcommit", "contiguous", "spread-job",
                        "use-min-nodes", "ignore-pbs", "no-kill", "oversubscribe"})


@dataclass
class Sbatch:
    """What sbatch makes of a batch script."""
    path: Path
    lines: list[str]
    options: dict[str, tuple[int, str]] = field(default_factory=dict)  # long name -> (line, value), as sbatch sees
    first_command: tuple[int, str] | None = None
    late: list[tuple[int, str]] = field(default_factory=list)  # #SBATCH lines after the first command (ignored)
    first_directive: int = 0

    def body(self) -> list[tuple[int, str]]:
        """The script's logical lines from its first command on, with their line numbers."""
        if self.first_command is None:
            return []
        start = self.first_command[0]
        return logical_lines([(start + i, line) for i, line in enumerate(self.lines[start - 1:])])

    def option(self, name: str, command_line: Sequence[str] = (), default: str | None = None) -> str | None:
        """Option `name` (long form) as the job gets it: sbatch's `command_line` overrides the #SBATCH line."""
        value = self.options[name][1] if name in self.options else default
        for key, given in options(" ".join(command_line)):
            if key == name:
                value = given
        return value


def options(text: str) -> list[tuple[str, str]]:
    """`--key=value`, `--key value`, `-k value` of one #SBATCH line (or a command line) as (long name, value)."""
    try:
        parts = shlex.split(strip_comment(text))
    except ValueError:
        parts = strip_comment(text).split()
    found, index = [], 0
    while index < len(parts):
        word = parts[index]
        if word.startswith("--"):
            key, equals, value = word[2:].partition("=")
            if not equals and index + 1 < len(parts) and not parts[index + 1].startswith("-"):
                value, index = parts[index + 1], index + 1
            found.append((key, value))
        elif word.startswith("-") and len(word) >= 2:
            value = word[2:]
            if not value and index + 1 < len(parts):
                value, index = parts[index + 1], index + 1
            found.append((SHORT_OPTIONS.get(word[:2], word[1:2]), value))
        index += 1
    return found


def read(path: Path) -> Sbatch:
    """A batch script as sbatch reads it: the #SBATCH lines up to the first command, and the late ones it ignores."""
    script = Sbatch(path, path.read_text(encoding="utf-8", errors="replace").splitlines())
    for number, line in enumerate(script.lines, 1):
        stripped = line.strip()
        if line.startswith("#SBATCH"):
            if script.first_command is not None:
                script.late.append((number, stripped))
                continue
            script.first_directive = script.first_directive or number
            for key, value in options(line[len("#SBATCH"):]):
                script.options[key] = (number, value)
        elif stripped and not stripped.startswith("#") and script.first_command is None:
            script.first_command = (number, stripped)
    return script


def script_argument(args: Sequence[str]) -> str | None:
    """The batch script an `sbatch ARGS` command line submits (None for --wrap or none)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("--wrap"):
            return None
        if arg.startswith("--"):
            if "=" not in arg and arg[2:] not in LONG_FLAGS:
                index += 1
        elif arg.startswith("-"):
            if len(arg) == 2 and arg[1] in SHORT_WITH_VALUE:
                index += 1
        else:
            return arg
        index += 1
    return None
