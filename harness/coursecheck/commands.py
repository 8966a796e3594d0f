"""Rule 5: a command of the book (or of a usage comment) naming a file that is not where it runs."""
from __future__ import annotations

import posixpath
import re
from pathlib import Path, PurePosixPath

from harness import bookcommands
from harness.bookcommands import PYTHON, Command, interpreted_program, is_placeholder, strip_comment, words
from harness.coursecheck.files import Problem, all_files, course_files, relative
from harness.sbatch import script_argument

# What a reader's `cat`, `cp` or `head` may name that must then be in the course
COURSE_SUFFIXES = frozenset({".py", ".sh", ".sbatch", ".toml", ".txt", ".md", ".yml", ".yaml", ".cfg", ".example",
                             ".lua", ".in", ".ini", ".conf", ".json"})
COURSE = PurePosixPath("course")  # ~/course, relative to the home folder
WORK = COURSE / "exercises"  # where the book works
WRAPPERS = frozenset({"srun", "env", "time", "nohup", "exec", "command", "watch"})


def _shown(place: PurePosixPath | None) -> str:
    return "an unknown folder" if place is None else "~" if str(place) in ("", ".") else f"~/{place}"


class Walk:
    """The reader's shell, as far as files go: where it is, and what earlier commands made."""

    def __init__(self, root: Path, rel: str, start: PurePosixPath, prose: bool = False):
        self.root, self.rel, self.cwd, self.prose = root, rel, start, prose
        self.made: set[PurePosixPath] = set()
        self.problems: list[Problem] = []

    # where a word points, relative to the home folder (None: outside it, or unknown)
    def place(self, word: str) -> PurePosixPath | None:
        word = re.sub(r"^(\$HOME|\$\{HOME\})(?=/|$)", "~", word)
        if word == "~" or word.startswith("~/"):
            joined = posixpath.normpath(word[2:] or ".")
        elif word.startswith("/") or word.startswith("~"):
            return None
        elif self.cwd is None:
            return None
        else:
            joined = posixpath.normpath(posixpath.join(str(self.cwd) or ".", word))
        if joined == ".." or joined.startswith("../"):
            return None
        return PurePosixPath("" if joined == "." else joined)

    def in_course(self, place: PurePosixPath | None) -> bool:
        return place is not None and place.parts[:1] == COURSE.parts

    def there(self, place: PurePosixPath, folder: bool = False) -> bool:
        if any(place == made or made in place.parents for made in self.made):
            return True
        target = self.root.joinpath(*place.parts[1:])
        return target.is_dir() if folder else target.exists()

    def looks_like_path(self, word: str) -> bool:
        return "/" in word or bool(PurePosixPath(word).suffix)

    def make(self, word: str) -> None:
        place = self.place(word)
        if place is not None and not is_placeholder(word):
            self.made.add(place)

    def need(self, command: Command, word: str, reader: bool = False) -> None:
        """`word` must name a file of the course that is there."""
        if is_placeholder(word) or (self.prose and not self.looks_like_path(word)):
            return
        if reader and PurePosixPath(word).suffix not in COURSE_SUFFIXES:
            return
        place = self.place(word)
        if not self.in_course(place) or self.there(place):
            return
        self.problems.append(Problem(self.rel, command.line, self._missing(command, word, place)))

    def _missing(self, command: Command, word: str, place: PurePosixPath) -> str:
        name = PurePosixPath(word).name
        elsewhere = [p for p in all_files(self.root) if p.name == name]
        text = strip_comment(command.text)
        if elsewhere and self.cwd is not None:
            found = COURSE.joinpath(*elsewhere[0].relative_to(self.root).parts)
            better = posixpath.relpath(str(found), str(self.cwd) or ".")
            return (f"`{text}` runs in {_shown(self.cwd)}, where there is no {word}: the course has it at "
                    f"{_shown(found)}, so write {better}")
        return (f"`{text}` runs in {_shown(self.cwd)}, where there is no {word}, and the course has no file of "
                f"that name: fix the name or the folder")

    def run(self, command: Command) -> None:
        for simple in words(command.text):
            self.simple(command, simple.words)
            for target in simple.creates:
                self.make(target)

    def simple(self, command: Command, ws: list[str]) -> None:
        while ws and re.match(r"^[A-Za-z_]\w*=", ws[0]):
            ws = ws[1:]
        while ws and ws[0] in WRAPPERS:
            ws = ws[1:]
            while ws and ws[0].startswith("-"):
                ws = ws[1:]
        if not ws:
            return
        name, args = ws[0], ws[1:]
        positional = [a for a in args if not a.startswith("-")]
        if name == "cd":
            self.cd(command, args[0] if args else "~")
        elif name in ("mkdir", "touch"):
            for arg in positional:
                self.make(arg)
        elif name in ("cp", "mv"):
            if len(positional) >= 2:
                for source in positional[:-1]:
                    self.need(command, source, reader=True)
                self.make(positional[-1])
        elif name in ("cat", "less", "more", "head", "tail"):
            skip = False
            for arg in args:
                if skip:
                    skip = False
                elif arg in ("-n", "-c"):
                    skip = True
                elif not arg.startswith("-"):
                    self.need(command, arg, reader=True)
        elif name == "sbatch":
            script = script_argument(args)
            if script is not None:
                self.need(command, script)
        elif PYTHON.match(name) or name in ("bash", "sh", "zsh"):
            program, rest = interpreted_program(args)
            if program is not None and (not PYTHON.match(name) or program.endswith(".py")):
                self.need(command, program)
                for arg in rest:
                    if not arg.startswith("-"):
                        self.make(arg)
        elif name in ("source", "."):
            if positional:
                self.need(command, positional[0])

    def cd(self, command: Command, target: str) -> None:
        if target == "-" or is_placeholder(target):
            self.cwd = None
            return
        place = self.place(target)
        if self.in_course(place) and not self.there(place, folder=True):
            self.problems.append(Problem(self.rel, command.line,
                                         f"`{strip_comment(command.text)}`: the course has no folder "
                                         f"{_shown(place)}: fix the folder name"))
            self.cwd = None  # the reader is stuck; do not report every later command as well
            return
        self.cwd = place


def book_pages(root: Path) -> tuple[list[Path], list[Problem]]:
    """The pages of the book in the order of its table of contents (all of book/*.md, by name, when _toc.yml
    cannot be read, with a problem saying so)."""
    import yaml

    from harness.book import toc_files

    try:
        names = toc_files(root)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = str(getattr(error, "problem", None) or error).splitlines()[0]
        return sorted((root / "book").glob("*.md")), [Problem(
            "_toc.yml", mark.line + 1 if mark else 1,
            f"the table of contents is not valid YAML ({reason}): fix it (the pages were checked in name order)")]
    pages = [root / f"{name}.md" for name in names]
    return [page for page in pages if page.is_file()], []


def usage_files(root: Path, files: list[Path] | None = None) -> list[tuple[Path, PurePosixPath]]:
    """Files whose usage comments are checked, each with the folder its commands start in."""
    chosen = []
    for path in course_files(root) if files is None else files:
        rel = path.relative_to(root)
        if path.suffix == ".sbatch":
            chosen.append((path, WORK))
        elif rel.parts[0] in ("exercises", "solutions") and path.suffix in (".py", ".sh"):
            chosen.append((path, COURSE.joinpath(*rel.parts[:-1])))
    return chosen


def check_commands(root: Path, files: list[Path] | None = None) -> list[Problem]:
    """Rule 5 for every page of the book and every usage comment."""
    pages, problems = book_pages(root)
    for page in pages:
        walk = Walk(root, relative(page, root), WORK)
        for command in bookcommands.page_commands(page):
            walk.run(command)
        problems += walk.problems
    for path, start in usage_files(root, files):
        walk = Walk(root, relative(path, root), start, prose=True)
        for command in bookcommands.usage_commands(path):
            walk.run(command)
        problems += walk.problems
    return problems
