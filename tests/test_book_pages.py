"""The book's pages keep their shape, and the book's one clone address reaches every clone command.

* Every page that _toc.yml lists exists.
* Every lesson of a day (the days come from _toc.yml, harness.lesson_time.course_days: a new lesson needs no edit
  here) and the page "Before the course" opens with its learning objectives as the first box, has a time estimate
  right after it (teaching and exercise minutes, before the first section) and ends with its key points as the last
  box.
* Time boxes that hold: each lesson's box is within 20 % of harness.lesson_time's estimate of its core path (one
  rule for every page: words, code lines, a first attempt at each exercise); the intro's schedule of each day gives
  every lesson its box's minutes, in _toc.yml's order, each row starting when the one before ends; day 1 ends by
  13:00 (the seed course's morning), day 2 by 17:00.
* A check every quarter hour: every lesson has at least one concept check or exercise per 15 minutes of its box.
* Student pages are for students: no page but instructors.md mentions the slides, the bench, make_pictures or the
  harness.
* The clone command of book/before-the-course.md shows the address set once in _config.yml
  (parse.myst_substitutions.course_repository): a copy of the book is built with another address, and the built
  HTML must show that address in a copyable code block. No page writes a clone address of its own, and no page puts
  the substitution into a code fence, where MyST would show it unreplaced.

The structure checks read the MyST sources (fast); only the clone check builds, and it builds one page.
"""
from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from harness.book import jupyter_book, toc_files
from harness.course_copy import copy_course
from harness.lesson_time import body_lines, course_days, estimate
from harness.plugin import ROOT
from harness.requires import require

CONFIG = ROOT / "_config.yml"
BOOK = ROOT / "book"
DAYS = {day: [Path(page).name for page in pages] for day, pages in course_days(ROOT).items()}
LESSONS = [name for pages in DAYS.values() for name in pages]
STRUCTURED_PAGES = [*LESSONS, "before-the-course"]
INSTRUCTOR_PAGES = {"instructors"}
# The latest end of each day: day 1 is the seed course's morning (09:00-13:00 with its breaks), day 2 one whole day.
DAY_ENDS = {1: "13:00", 2: "17:00"}
TOLERANCE = 0.20  # a claimed box may differ from the estimate by a fifth, the bound (issue 19)
MINUTES_PER_CHECK = 15  # at least one concept check or exercise per quarter hour of a lesson's box
# What a student page does not talk about: the course team's slides, its benchmarks, its picture maker, its harness.
NOT_FOR_STUDENTS = re.compile(r"\bslides?\b|\bbench\b|python -m bench|make_pictures|\bharness\b|coursecheck|"
                              r"exercise_sync|student_view", re.I)
SUBSTITUTION = "course_repository"
BUILD_TIMEOUT_S = 600

FENCE_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<arg>.*)$")
TIME_BOX = re.compile(r"Teaching:\**\s*(?P<teaching>\d+)\s*min.*?Exercises:\**\s*(?P<exercises>\d+)\s*min", re.S)
SCHEDULE_ROW = re.compile(r"^\|\s*(?P<start>\d\d:\d\d)\s*\|(?P<what>[^|\n]*)\|\s*(?P<teaching>\d*)\s*\|"
                          r"\s*(?P<exercises>\d*)\s*\|\s*$", re.M)
BREAK = re.compile(r"break,?\s*(?P<minutes>\d+)\s*min", re.I)
DOC = re.compile(r"\{doc\}`(?P<page>[\w/.-]+)`")


# ---- reading MyST pages ----------------------------------------------------------------------------------------------

class Box:
    """One top-level directive of a page: its name, argument, first and last line, and its body."""

    def __init__(self, name: str, arg: str, start: int, end: int, body: str) -> None:
        self.name, self.arg, self.start, self.end, self.body = name, arg.strip(), start, end, body

    @property
    def title(self) -> str:
        return self.arg if self.name == "admonition" else self.name

    def __repr__(self) -> str:
        return f"{{{self.name}}} {self.arg!r} (lines {self.start + 1}-{self.end + 1})"


def top_level_boxes(lines: list[str]) -> list[Box]:
    """The page's top-level directives (colon or backtick fences), each up to its closing fence."""
    boxes: list[Box] = []
    i = 0
    while i < len(lines):
        match = FENCE_OPEN.match(lines[i])
        plain_fence = re.match(r"^(`{3,}|~{3,})", lines[i])
        if match:
            fence = match.group("fence")
            closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), len(lines) - 1)
            boxes.append(Box(match.group("name"), match.group("arg"), i, end, "\n".join(lines[i + 1:end])))
            i = end + 1
        elif plain_fence:  # a code block: skip it whole, its lines are not page structure
            fence = plain_fence.group(1)
            closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            i = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), len(lines) - 1) + 1
        else:
            i += 1
    return boxes


def time_estimate(box: Box) -> tuple[int, int] | None:
    match = TIME_BOX.search(box.body)
    return (int(match["teaching"]), int(match["exercises"])) if match else None


def structure_problems(text: str) -> list[str]:
    """What is wrong with a lesson page's shape; empty when objectives, time and key points sit where they belong."""
    lines = body_lines(text)
    boxes = top_level_boxes(lines)
    first_section = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    problems = []
    if not boxes:
        return ["the page has no boxes at all: learning objectives, time and key points are missing"]
    first = boxes[0]
    if first.title.lower() != "learning objectives":
        problems.append(f"the first box is {first!r}, not the learning objectives")
    elif first.start > first_section:
        problems.append("the learning objectives come after the first section")
    elif not re.search(r"^\s*- ", first.body, re.M):
        problems.append("the learning objectives list no objective")
    if len(boxes) < 2 or boxes[1].title.lower() != "time":
        problems.append("the box after the learning objectives is not the time estimate ({admonition} Time)")
    else:
        if time_estimate(boxes[1]) is None:
            problems.append("the time box lacks 'Teaching: N min' and 'Exercises: N min'")
        if boxes[1].start > first_section:
            problems.append("the time box comes after the first section")
    last = boxes[-1]
    if last.title.lower() != "key points":
        problems.append(f"the last box is {last!r}, not the key points")
    else:
        if "\n".join(lines[last.end + 1:]).strip():
            problems.append("text follows the key points: they must close the page")
        if not re.search(r"^\s*- ", last.body, re.M):
            problems.append("the key points list no point")
    return problems


def page_source(name: str) -> str:
    return (BOOK / f"{name}.md").read_text(encoding="utf-8")


def time_box_of(name: str) -> tuple[int, int]:
    boxes = top_level_boxes(body_lines(page_source(name)))
    found = [time_estimate(b) for b in boxes if b.title.lower() == "time"]
    assert found and found[0], f"book/{name}.md has no time estimate"
    return found[0]


# ---- the table of contents and the shape of the pages -----------------------------------------------------------------

def test_every_toc_page_exists() -> None:
    pages = toc_files(ROOT)
    assert pages, "_toc.yml lists no pages"
    missing = [p for p in pages if not any((ROOT / f"{p}{ext}").is_file() for ext in (".md", ".ipynb", ".rst"))]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


def test_the_days_and_the_reference_pages_are_in_the_toc() -> None:
    """Both days have lessons; troubleshooting follows them, and the instructors' notes come last, in a part of
    their own, not among a day's lessons."""
    assert set(DAYS) == {1, 2, 3}, f"_toc.yml: parts captioned 'Day 1 ...' to 'Day 3 ...' give the days {sorted(DAYS)}"
    pages = toc_files(ROOT)
    assert {"book/troubleshooting", "book/instructors"} <= set(pages), "_toc.yml lacks troubleshooting or instructors"
    assert not INSTRUCTOR_PAGES & set(LESSONS), "instructors.md sits among a day's lessons: give it its own part"
    last_lesson = max(pages.index(f"book/{name}") for name in LESSONS)
    assert pages.index("book/instructors") > last_lesson, "instructors.md must come after the days"
    assert pages[-1] == "book/instructors", "instructors.md must be the last part of the book"


def test_before_the_course_comes_before_the_first_lesson() -> None:
    pages = toc_files(ROOT)
    assert pages.index("book/before-the-course") < pages.index("book/supercomputers"), (
        "_toc.yml: 'Before the course' must come before the first lesson")


@pytest.mark.parametrize("name", STRUCTURED_PAGES)
def test_lesson_opens_with_objectives_and_time_and_closes_with_key_points(name: str) -> None:
    problems = structure_problems(page_source(name))
    assert not problems, f"book/{name}.md: " + "; ".join(problems)


# ---- time boxes that hold ---------------------------------------------------------------------------------------------

def box_problems(name: str, box: tuple[int, int], path: Path) -> list[str]:
    """Where a lesson's claimed box (teaching, exercises) strays more than TOLERANCE from the estimate."""
    t = estimate(path)
    claimed, estimated = sum(box), t.minutes
    problems = []
    if abs(claimed - estimated) > TOLERANCE * estimated:
        problems.append(f"{name}: the box claims {claimed} min ({box[0]} + {box[1]}), the estimate is {estimated} min "
                        f"({t.words} words, {t.code_lines} code lines: {t.reading_minutes} min reading; "
                        f"{t.checks} checks, {t.exercises} exercises, {t.jobs} jobs: {t.exercise_minutes} min)")
    for part, claim, est in (("teaching", box[0], t.reading_minutes), ("exercises", box[1], t.exercise_minutes)):
        if abs(claim - est) > max(TOLERANCE * est, 2):  # two minutes of slack for small parts: boxes round
            problems.append(f"{name}: {part} claims {claim} min, the estimate is {est} min")
    return problems


@pytest.mark.parametrize("name", LESSONS)
def test_time_box_is_within_a_fifth_of_the_estimate(name: str) -> None:
    problems = box_problems(name, time_box_of(name), BOOK / f"{name}.md")
    assert not problems, "\n".join(problems) + "\n(python -m harness.lesson_time prints every page's figures)"


@pytest.mark.parametrize("name", LESSONS)
def test_a_check_or_exercise_every_quarter_hour(name: str) -> None:
    minutes = sum(time_box_of(name))
    t = estimate(BOOK / f"{name}.md")
    needed = minutes // MINUTES_PER_CHECK
    assert t.boxes >= needed, (f"book/{name}.md: {minutes} min in its box need {needed} concept checks or exercises "
                               f"on the core path (one per {MINUTES_PER_CHECK} min); it has {t.boxes}. Add an "
                               "{exercise} with `:class: check` (predict, sort, compute, read an error)")


def schedule(text: str, day: int) -> list[tuple[str, str, int, int]]:
    """The rows of the intro's table under '## Day N': (start, what, teaching, exercises); a break row's minutes
    are its teaching minutes ("break, 15 min")."""
    section = re.search(rf"^## Day {day}\b.*?(?=^## |\Z)", text, re.M | re.S)
    assert section, f"book/intro.md has no section '## Day {day}'"
    rows = []
    for m in SCHEDULE_ROW.finditer(section.group(0)):
        pause = BREAK.search(m["what"])
        teaching = int(pause["minutes"]) if pause else int(m["teaching"] or 0)
        rows.append((m["start"], m["what"].strip(), teaching, int(m["exercises"] or 0)))
    return rows


def schedule_problems(text: str, days: dict[int, list[str]], boxes: dict[str, tuple[int, int]]) -> list[str]:
    """Where the intro's schedules differ from the boxes, from _toc.yml's order or from the day's time."""
    problems = []
    for day, pages in days.items():
        rows = schedule(text, day)
        if not rows:
            problems.append(f"day {day}: no schedule rows")
            continue
        listed = [DOC.search(what)["page"].split("/")[-1] for _, what, _, _ in rows if DOC.search(what)]
        if listed != pages:
            problems.append(f"day {day}: the schedule lists {listed}, _toc.yml {pages}")
        for start, what, teaching, exercises in rows:
            doc = DOC.search(what)
            name = doc["page"].split("/")[-1] if doc else None
            if name in boxes and (teaching, exercises) != boxes[name]:
                problems.append(f"day {day}: {name} has {teaching} + {exercises} min, its box {boxes[name]}")
            elif not doc and not BREAK.search(what) and (teaching or exercises):
                problems.append(f"day {day}: the row {what!r} has minutes but is neither a lesson nor a break")
        for (start, what, teaching, exercises), (following, next_what, _, _) in zip(rows, rows[1:]):
            hours, minutes = map(int, start.split(":"))
            ends = hours * 60 + minutes + teaching + exercises
            if f"{ends // 60:02d}:{ends % 60:02d}" != following:
                problems.append(f"day {day}: {what!r} starts {start} and takes {teaching + exercises} min, "
                                f"so {next_what!r} starts {ends // 60:02d}:{ends % 60:02d}, not {following}")
        if rows[-1][0] > DAY_ENDS.get(day, "17:00"):
            problems.append(f"day {day} ends at {rows[-1][0]}, after {DAY_ENDS.get(day, '17:00')}")
    return problems


def test_intro_schedules_are_summed_from_the_lessons_boxes() -> None:
    boxes = {name: time_box_of(name) for name in LESSONS}
    problems = schedule_problems(page_source("intro"), DAYS, boxes)
    assert not problems, "book/intro.md's schedules:\n" + "\n".join(problems)


def test_the_time_checks_see_what_is_wrong(tmp_path: Path) -> None:
    """The box, check and schedule tests would pass vacuously if they saw nothing: prove they reject."""
    page = tmp_path / "lesson.md"
    page.write_text(GOOD_PAGE.replace("## A section", "## A section\n\n" + "word " * 850), encoding="utf-8")
    assert estimate(page).reading_minutes == 5 and estimate(page).boxes == 0
    assert not box_problems("lesson", (5, 0), page)
    assert box_problems("lesson", (5, 10), page), "a box twice the estimate passed"
    assert box_problems("lesson", (2, 0), page), "a box of half the estimate passed"
    optional = tmp_path / "optional.md"
    optional.write_text(page.read_text().replace("## A section", "## Going further: more"), encoding="utf-8")
    assert estimate(optional).words < 20, "words under 'Going further' counted for the core path"
    check = "\n:::{exercise} Predict\n:label: c\n:class: check\n\nWhat happens?\n:::\n"
    checked = tmp_path / "checked.md"
    checked.write_text(page.read_text().replace("## A section", "## A section\n" + check), encoding="utf-8")
    assert estimate(checked).checks == 1 and estimate(checked).exercise_minutes == 3
    intro = ("## Day 1\n\n| starts | lesson | teaching | exercises |\n|---|---|---|---|\n"
             "| 09:00 | {doc}`a` | 10 | 5 |\n| 09:15 | break, 15 min | | |\n| 09:30 | {doc}`b` | 5 | 5 |\n"
             "| 09:40 | end of day 1 | | |\n")
    assert not schedule_problems(intro, {1: ["a", "b"]}, {"a": (10, 5), "b": (5, 5)})
    assert schedule_problems(intro, {1: ["a", "b"]}, {"a": (10, 6), "b": (5, 5)}), "a changed box passed"
    assert schedule_problems(intro, {1: ["b", "a"]}, {"a": (10, 5), "b": (5, 5)}), "a wrong order passed"
    assert schedule_problems(intro.replace("09:30", "09:35"), {1: ["a", "b"]}, {"a": (10, 5), "b": (5, 5)})
    late = intro.replace("09:", "13:")
    assert any("ends at" in p for p in schedule_problems(late, {1: ["a", "b"]}, {"a": (10, 5), "b": (5, 5)}))


# ---- student pages are for students -----------------------------------------------------------------------------------

def maintainer_mentions(text: str) -> list[str]:
    return [f"{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), 1)
            if NOT_FOR_STUDENTS.search(line)]


def test_no_student_page_mentions_slides_bench_or_harness() -> None:
    found = []
    for page in toc_files(ROOT):
        if Path(page).name in INSTRUCTOR_PAGES or not (ROOT / f"{page}.md").is_file():
            continue
        found += [f"{page}.md:{hit}" for hit in maintainer_mentions((ROOT / f"{page}.md").read_text("utf-8"))]
    assert not found, ("notes for the course team on a student page: move them to book/instructors.md or "
                       "CONTRIBUTING.md:\n" + "\n".join(found))
    assert maintainer_mentions("The slides leave it out.\nRun python -m tools.make_pictures.\n"), "the check sees nothing"


GOOD_PAGE = """# A lesson

:::{admonition} Learning objectives
:class: tip
- one
:::

:::{admonition} Time
:class: note
**Teaching:** 5 min · **Exercises:** 10 min
:::

## A section

```bash
:::{admonition} Key points
```

:::{admonition} Key points
:class: important
- one
:::
"""


def test_the_structure_check_sees_what_is_wrong() -> None:
    """The checks above would pass vacuously if the parser saw nothing: prove it accepts and rejects."""
    assert structure_problems(GOOD_PAGE) == []
    assert time_estimate(top_level_boxes(GOOD_PAGE.splitlines())[1]) == (5, 10)
    swapped = GOOD_PAGE.replace("Learning objectives", "XX").replace(":::{admonition} Time", ":::{admonition} YY")
    assert any("learning objectives" in p for p in structure_problems(swapped))
    assert any("time estimate" in p for p in structure_problems(swapped))
    no_minutes = GOOD_PAGE.replace("**Exercises:** 10 min", "")
    assert any("Teaching: N min" in p for p in structure_problems(no_minutes))
    trailing = GOOD_PAGE + "\nMore text after the key points.\n"
    assert any("follows the key points" in p for p in structure_problems(trailing))
    late = GOOD_PAGE.replace("# A lesson\n", "# A lesson\n\n## Too early\n")
    assert any("after the first section" in p for p in structure_problems(late))
    fenced_only = GOOD_PAGE.rsplit(":::{admonition} Key points\n:class: important", 1)[0]
    assert any("not the key points" in p for p in structure_problems(fenced_only))


# ---- the clone address: one setting, shown wherever the book clones ---------------------------------------------------

def configured_address() -> str:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    address = (config.get("parse") or {}).get("myst_substitutions", {}).get(SUBSTITUTION)
    assert address, f"_config.yml has no parse.myst_substitutions.{SUBSTITUTION}"
    return address


def test_no_page_writes_a_clone_address_of_its_own() -> None:
    pages = toc_files(ROOT)
    own, unreplaced = [], []
    for page in pages:
        source = ROOT / f"{page}.md"
        if not source.is_file():
            continue
        fence_info = None  # the info string of the backtick fence we are in, or None outside fences
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"git clone\s+(https?://|git@|ssh://)", line):
                own.append(f"{page}.md:{number}: {line.strip()}")
            fence = re.match(r"^\s*(`{3,})(.*)$", line)
            if fence:
                fence_info = None if fence_info is not None else fence.group(2).strip()
            elif fence_info is not None and "{{" in line and not fence_info.startswith("{parsed-literal}"):
                unreplaced.append(f"{page}.md:{number}: {line.strip()}")
    assert not own, (f"clone commands with an address of their own; use {{{{ {SUBSTITUTION} }}}} from _config.yml "
                     "in a {parsed-literal} block:\n" + "\n".join(own))
    assert not unreplaced, ("substitutions inside a code fence are shown unreplaced; use a {parsed-literal} block:\n"
                            + "\n".join(unreplaced))


class _PreBlocks(HTMLParser):
    """The text of every <pre>, and whether it sits in a div.highlight (where sphinx-copybutton adds its button)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, bool]] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, opens a div.highlight)
        self._pre: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "pre" and self._pre is None:
            self._pre = []
        if tag not in ("br", "img", "input", "meta", "link", "hr"):
            self._stack.append((tag, tag == "div" and "highlight" in classes))

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self._pre is not None:
            in_highlight = any(opens for _, opens in self._stack[:-1])
            self.blocks.append(("".join(self._pre), in_highlight))
            self._pre = None
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._pre is not None:
            self._pre.append(data)


def test_clone_command_shows_the_configured_address(tmp_path: Path) -> None:
    """Build 'Before the course' alone, with another address in _config.yml: the built clone command must follow."""
    configured_address()
    builder = jupyter_book()
    require(builder is not None, "jupyter-book not found: pip install -r requirements.txt")
    copy = copy_course(ROOT, tmp_path / "course")
    marker = "https://example.invalid/course-files-from-the-config.git"
    config = yaml.safe_load((copy / "_config.yml").read_text(encoding="utf-8"))
    config["parse"]["myst_substitutions"][SUBSTITUTION] = marker
    (copy / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (copy / "_toc.yml").write_text("format: jb-book\nroot: book/before-the-course\n", encoding="utf-8")
    run = subprocess.run([builder, "build", str(copy)], capture_output=True, text=True, cwd=copy,
                         timeout=BUILD_TIMEOUT_S)
    page = copy / "_build" / "html" / "book" / "before-the-course.html"
    assert run.returncode == 0 and page.is_file(), (
        f"building book/before-the-course.md failed (exit {run.returncode}):\n" + (run.stdout + run.stderr)[-3000:])
    parser = _PreBlocks()
    parser.feed(page.read_text(encoding="utf-8"))
    clones = [(text.strip(), copyable) for text, copyable in parser.blocks if "git clone" in text]
    assert clones, "book/before-the-course.md shows no clone command"
    wrong = [text for text, _ in clones if f"git clone {marker}" not in text]
    assert not wrong, f"clone commands that ignore _config.yml's {SUBSTITUTION}: {wrong}"
    not_copyable = [text for text, copyable in clones if not copyable]
    assert not not_copyable, f"clone commands without a copy button (not in a div.highlight): {not_copyable}"
    assert not any("{{" in text for text, _ in parser.blocks), "a code block shows an unreplaced {{ substitution }}"
