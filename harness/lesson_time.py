"""How long a lesson takes a newcomer, estimated the same way for every page, and which pages make which day.

One rule for every page, so that a lesson's claimed time box can be checked instead of guessed
(tests/test_book_pages.py keeps each box within 20 % of this estimate):

* **Reading**: the page's prose at `WORDS_PER_MINUTE` (180, the usual figure for technical prose read with care),
  plus every line of code it shows (code blocks, console output, `literalinclude`d files, code cells) at
  `CODE_LINES_PER_MINUTE` (10: a line of code is read, and often compared with the prose, in about 6 s).
* **Exercises**: a first attempt at each `{exercise}` box. A concept check (`:class: check`: predict, sort,
  compute, read an error) takes `CHECK_MINUTES`; an exercise `RUN_MINUTES` (read the task, type the commands, read
  the output), plus `REGION_MINUTES` for every student region (`# --- your work ---`) of the `exercises/` files
  its box shows (read the TODO, write a few lines, run, fix), plus `JOB_MINUTES` when it submits a batch job
  (`sbatch` in the box or its solution: queue, run, read the output file). Whatever the boxes and their solutions show is part of the attempt, not of
  the reading.
* **Core path only**: sections headed `## Going further ...` are optional depth; they count for neither reading
  nor exercises, and nor do their exercise boxes.

The days come from _toc.yml: the root page and every part whose caption starts with "Day 1" are day 1, parts
whose caption starts with "Day N" are day N; other parts (before the course, reference, instructors) have no day.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.bookcommands import DIRECTIVE, FENCE, OPTION

REPO = Path(__file__).resolve().parent.parent

WORDS_PER_MINUTE = 180
CODE_LINES_PER_MINUTE = 10
CHECK_MINUTES = 3
RUN_MINUTES = 6
REGION_MINUTES = 4
JOB_MINUTES = 5
REGION = "# --- your work ---"
GOING_FURTHER = re.compile(r"^##\s+Going further\b", re.I)

_LABEL = re.compile(r"^\s*\([\w-]+\)=\s*$")
_WORD = re.compile(r"[\w'’.-]*\w")
_SBATCH = re.compile(r"(^|\$ |[;&|(] *)(\w+=\S+ +)*sbatch\s")
_PROSE_DIRECTIVES = {"admonition", "note", "tip", "important", "warning", "caution", "attention", "hint", "seealso",
                     "danger", "error", "exercise", "solution", "dropdown", "figure", "margin", "sidebar", "epigraph"}


@dataclass
class PageTime:
    """What one page asks of a newcomer on its core path (its "Going further" sections left out)."""

    name: str
    words: int = 0
    code_lines: int = 0
    checks: int = 0
    exercises: int = 0
    regions: int = 0
    jobs: int = 0
    optional_words: int = 0
    labels: list[str] = field(default_factory=list)  # the labels of the core path's exercises

    @property
    def reading_minutes(self) -> int:
        return math.ceil(self.words / WORDS_PER_MINUTE + self.code_lines / CODE_LINES_PER_MINUTE)

    @property
    def exercise_minutes(self) -> int:
        return (self.checks * CHECK_MINUTES + self.exercises * RUN_MINUTES + self.regions * REGION_MINUTES
                + self.jobs * JOB_MINUTES)

    @property
    def minutes(self) -> int:
        return self.reading_minutes + self.exercise_minutes

    @property
    def boxes(self) -> int:
        """Concept checks and exercises: the moments the student does something."""
        return self.checks + self.exercises


def body_lines(text: str) -> list[str]:
    """The page's lines after its front matter (a leading `---` ... `---` block)."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            return lines[end + 1:]
    return lines


def _included_text(page: Path, target: str) -> str:
    """The file a literalinclude of the page names ("" where there is none)."""
    path = (page.parent / target).resolve()
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def _included_lines(page: Path, target: str, options: dict[str, str]) -> int:
    """How many lines a literalinclude shows (its `:lines:` range, else the whole file)."""
    total = len(_included_text(page, target).splitlines())
    spec = options.get("lines")
    if not spec:
        return total
    shown = 0
    for part in spec.split(","):
        start, _, end = part.strip().partition("-")
        first = int(start) if start else 1
        last = (int(end) if end else total) if "-" in part else first
        shown += max(0, min(last, total) - first + 1)
    return shown


def _included_regions(page: Path, target: str, options: dict[str, str]) -> int:
    """How many student regions a literalinclude of an exercises/ file shows (the whole file: all of them)."""
    return _included_text(page, target).count(REGION) if not options.get("lines") else 0


def _count_words(line: str) -> int:
    line = re.sub(r"\{(doc|ref|numref|term|download)\}`([^`<]*)(<[^>]*>)?`", r"\2", line)
    line = re.sub(r"\]\([^)]*\)", "]", line)  # a link's target is not read
    return len(_WORD.findall(line))


def estimate(page: Path) -> PageTime:
    """The page's core-path figures: prose words, code lines, concept checks, exercises, submitted jobs."""
    result = PageTime(page.stem)
    lines = body_lines(page.read_text(encoding="utf-8"))
    optional = False
    job_counted = True  # whether the last exercise's job is counted (or it was a check): one job per exercise
    # the open fences: (fence string, kind), kind one of "code", "prose", "exercise", "check", "solution"
    stack: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not stack and line.startswith("## "):
            optional = bool(GOING_FURTHER.match(line))
        match = FENCE.match(line)
        if match and stack and not match["info"] and match["fence"][0] == stack[-1][0][0] and len(
                match["fence"]) >= len(stack[-1][0]):
            stack.pop()
            i += 1
            continue
        in_code = any(kind == "code" for _, kind in stack)
        in_box = any(kind in ("exercise", "check", "solution") for _, kind in stack)
        if in_box and not optional and not job_counted and _SBATCH.search(line):
            result.jobs += 1
            job_counted = True
        if match and not in_code:
            directive = DIRECTIVE.match(match["info"])
            options: dict[str, str] = {}
            j = i + 1
            while j < len(lines) and OPTION.match(lines[j]):
                key, _, value = lines[j].strip()[1:].partition(":")
                options[key] = value.strip()
                j += 1
            name = directive["name"] if directive else ""
            if name == "literalinclude":
                shown = _included_lines(page, directive["argument"], options)
                if not optional and not in_box:
                    result.code_lines += shown
                if not optional and stack and stack[-1][1] == "exercise" and "exercises/" in directive["argument"]:
                    result.regions += _included_regions(page, directive["argument"], options)
                end = next((k for k in range(j, len(lines)) if lines[k].strip() == match["fence"]), j - 1)
                i = end + 1
                continue
            if name in ("exercise", "solution"):
                kind = "solution" if name == "solution" else (
                    "check" if "check" in options.get("class", "").split() else "exercise")
                if not optional and kind == "check":
                    result.checks += 1
                elif not optional and kind == "exercise":
                    result.exercises += 1
                    result.labels.append(options.get("label", "exercise"))
                    job_counted = False
                elif kind == "check":
                    job_counted = True
                stack.append((match["fence"], kind))
                i = j
                continue
            stack.append((match["fence"], "prose" if name in _PROSE_DIRECTIVES else "code"))
            i = j if directive else i + 1
            continue
        if in_code:
            if not optional and not in_box and line.strip():
                result.code_lines += 1
        elif not _LABEL.match(line) and not OPTION.match(line):
            count = _count_words(line)
            if optional:
                result.optional_words += count
            elif not in_box:
                result.words += count
        i += 1
    return result


# ---- the days, from _toc.yml ------------------------------------------------------------------------------------------

def course_days(root: Path = REPO) -> dict[int, list[str]]:
    """Day number -> the pages of that day in book order (paths without suffix), read from `root/_toc.yml`."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    days: dict[int, list[str]] = {}
    for part in toc.get("parts", []):
        found = re.match(r"Day (\d+)\b", str(part.get("caption", "")))
        if not found:
            continue
        day = int(found.group(1))
        pages = days.setdefault(day, [toc["root"]] if day == 1 and toc.get("root") else [])
        for chapter in part.get("chapters", []):
            pages.append(str(Path(chapter["file"]).with_suffix("")) if Path(chapter["file"]).suffix else
                         chapter["file"])
    return days


def table(root: Path = REPO) -> str:
    """A Markdown table of every day's pages: words, code lines, checks and exercises, the estimate."""
    rows = ["| day | page | words | code lines | checks | exercises | regions | jobs | reading | exercises (min) | total |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for day, pages in sorted(course_days(root).items()):
        for name in pages:
            t = estimate(root / f"{name}.md")
            rows.append(f"| {day} | {t.name} | {t.words} | {t.code_lines} | {t.checks} | {t.exercises} | {t.regions} | "
                        f"{t.jobs} | "
                        f"{t.reading_minutes} | {t.exercise_minutes} | {t.minutes} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
