"""The commands of the course as a reader meets them: in the book's code blocks and in the files' usage comments.

Shared by the course checker (harness/coursecheck/: does every command name a file that is there?) and the
student's walk through day 1 (tests/test_student_path.py: run the exercises' commands in the book's order).

* `blocks(page)`: the fenced code blocks of a MyST page, each with the directives it sits in (``exercise``,
  ``solution``, ``tip``, ...), its language and its first line.
* `page_commands(page)`: the shell commands of a page's `bash`/`sh`/`shell` blocks (every line; `\\` continues a
  line) and `console` blocks (the lines after a `$ ` prompt; the rest is example output), in page order.
* `exercise_commands(page)`: the ones inside an ``{exercise}`` or ``{solution}`` directive: what a student types
  to do the page's exercises. The lesson's console blocks around them show the same commands with example output
  (and demonstrations such as `scancel 412169` or a job that hangs without internet), so they are not part of it.
* `usage_commands(file)`: commands in the usage comment at the top of an sbatch file, a shell script (leading
  comment lines) or a Python program (its docstring), such as
  ``cd ~/course/exercises && sbatch ../slurm/<job>.sbatch``.
* `words(command)`: a command line cut into simple commands (at `&&`, `||`, `;`, `|`, `&`), each as its words and
  the targets of its output redirections.
"""
from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# Languages of code blocks whose every line is a command, and of those where only `$ ` lines are
SCRIPT_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh"})
CONSOLE_LANGUAGES = frozenset({"console", "shell-session", "bash-session", "sh-session"})
# Backtick-fenced directives whose body is code in the language of their argument
CODE_DIRECTIVES = frozenset({"code-block", "code", "sourcecode"})
# Backtick-fenced directives whose body is neither Markdown nor commands
OPAQUE_DIRECTIVES = frozenset({"code-cell", "literalinclude", "parsed-literal", "raw", "math", "figure", "image",
                               "csv-table", "list-table", "table", "mermaid", "graphviz", "glue", "bibliography"})
EXERCISE_DIRECTIVES = frozenset({"exercise", "solution"})
FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*?)\s*$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<argument>.*)$")
OPTION = re.compile(r"^\s*:[\w-]+:")  # a directive's `:option: value` line
EXAMPLE_JOB_ID = re.compile(r"Submitted batch job (\d+)")
# A placeholder the reader replaces: <jobid>, <id>, ...
ANGLE_PLACEHOLDER = re.compile(r"<([A-Za-z][\w-]*)>")
PLACEHOLDER_MARK = "\x01"
SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&"})
OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>"})
OTHER_REDIRECTS = frozenset({"<", "<<", "<<<", ">&", "<&", "<>"})
# A usage comment is cut into pieces at sentence ends, commas, semicolons, wide gaps, brackets and backticks;
# a piece holds a command from one of these words on (prose before it is not part of it)
USAGE_PIECES = re.compile(r"(?<=[\w)])\.(?:\s|$)|,\s|;\s|\s{3,}|[()`]")
USAGE_COMMAND = re.compile(r"(?:^|(?<=[\s:]))(?:cd|sbatch|python3?|bash|source|cp|cat)\s+\S.*")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""
    path: Path
    line: int  # the line of its opening fence (1-based)
    language: str  # "bash", "console", "python", "{literalinclude}" for an opaque directive, "" when unnamed
    lines: tuple[str, ...]
    directives: tuple[str, ...] = ()  # the directives it sits in, outermost first

    @property
    def in_exercise(self) -> bool:
        return any(name in EXERCISE_DIRECTIVES for name in self.directives)

    def commands(self) -> list["Command"]:
        """Its shell commands (none for other languages), each with its page line."""
        if self.language in SCRIPT_LANGUAGES:
            return _joined(self, [(i, line) for i, line in enumerate(self.lines)])
        if self.language in CONSOLE_LANGUAGES:
            prompted, going_on = [], False
            for i, line in enumerate(self.lines):
                stripped = line.strip()
                if stripped.startswith("$ ") or stripped == "$":
                    prompted.append((i, stripped[1:].strip()))
                    going_on = stripped.endswith("\\")
                elif going_on:  # continuation of a prompted line (`> ` is the shell's second prompt)
                    prompted.append((i, re.sub(r"^>\s?", "", stripped)))
                    going_on = stripped.endswith("\\")
            return _joined(self, prompted)
        return []


@dataclass(frozen=True)
class Command:
    """One command line as the reader sees it."""
    path: Path
    line: int
    text: str
    directives: tuple[str, ...] = ()
    block_line: int = 0  # the opening line of its code block (0: a usage comment)


@dataclass
class Simple:
    """One simple command of a command line: its words, and the files its output redirections create."""
    words: list[str] = field(default_factory=list)
    creates: list[str] = field(default_factory=list)


def logical_lines(numbered: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(number of the first line, text) of each shell command: lines joined where they end with a backslash, blank
    and comment-only lines dropped. A backslash on the last line joins nothing."""
    found, pending, start = [], "", 0
    for number, line in numbered:
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text and strip_comment(text).strip():
            found.append((start, text))
    if pending.strip():
        found.append((start, pending.strip()))
    return found


def _joined(block: Block, numbered: list[tuple[int, str]]) -> list[Command]:
    """The block's commands, one per logical line."""
    return [Command(block.path, block.line + 1 + start, text, block.directives, block.line)
            for start, text in logical_lines(numbered)]


def blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced code block of a MyST page, in page order, with the directives around it.

    Backtick and tilde fences hold code (or an opaque directive); colon fences and backtick-fenced directives
    such as ```` ```{note} ```` hold Markdown, which may hold more fences. A fence closes at a line of the same
    character, at least as long, with nothing after it.
    """
    text = path.read_text(encoding="utf-8", errors="replace") if text is None else text
    found: list[Block] = []
    # open containers: (fence char, fence length, directive name)
    containers: list[tuple[str, int, str]] = []
    code: tuple[str, int, str, int, list[str], bool] | None = None  # char, length, language, line, lines, directive
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if code is not None:
            char, length, language, start, body, directive_body = code
            if match and match["fence"][0] == char and len(match["fence"]) >= length and not match["info"]:
                found.append(Block(path, start, language, tuple(_drop_options(body) if directive_body else body),
                                   tuple(name for _, _, name in containers)))
                code = None
            else:
                body.append(line)
            continue
        if not match:
            continue
        fence, info = match["fence"], match["info"]
        if not info:
            if containers and containers[-1][0] == fence[0] and len(fence) >= containers[-1][1]:
                containers.pop()
            elif fence[0] != ":":
                code = (fence[0], len(fence), "", number, [], False)
            continue
        directive = DIRECTIVE.match(info)
        if directive is None:  # a plain code fence: ```bash
            if fence[0] != ":":
                code = (fence[0], len(fence), info.split()[0].lower(), number, [], False)
            continue
        name, argument = directive["name"], directive["argument"]
        if fence[0] == ":" or name not in CODE_DIRECTIVES | OPAQUE_DIRECTIVES:
            containers.append((fence[0], len(fence), name))
        elif name in CODE_DIRECTIVES:
            code = (fence[0], len(fence), (argument.split() or [""])[0].lower(), number, [], True)
        else:
            code = (fence[0], len(fence), "{" + name + "}", number, [], True)
    return found


def _drop_options(body: list[str]) -> list[str]:
    """A directive's leading `:option: value` lines are not code (they stay as blank lines, for the numbering)."""
    lines, in_options = [], True
    for line in body:
        if in_options and OPTION.match(line):
            lines.append("")
            continue
        in_options = False
        lines.append(line)
    return lines


def page_commands(path: Path) -> list[Command]:
    """Every command of a page's shell and console blocks, in page order."""
    return [command for block in blocks(path) for command in block.commands()]


def exercise_commands(path: Path) -> list[Command]:
    """The commands inside the page's {exercise} and {solution} directives, in page order."""
    return [command for block in blocks(path) if block.in_exercise for command in block.commands()]


def example_job_ids(path: Path) -> set[str]:
    """Job ids that the page's example output invents (`Submitted batch job 412169`)."""
    return set(EXAMPLE_JOB_ID.findall(path.read_text(encoding="utf-8", errors="replace")))


def header_comment(path: Path) -> list[tuple[int, str]]:
    """The usage comment at the top of a file, as (line, text): a Python program's docstring, or the comment lines
    of a shell or sbatch script before its first command (without the shebang and the #SBATCH lines)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".py":
        try:
            module = ast.parse(text)
        except SyntaxError:
            return []
        first = module.body[0] if module.body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            return []
        return [(first.lineno + i, line) for i, line in enumerate(first.value.value.splitlines())]
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        if stripped.startswith("#!") or stripped.startswith("#SBATCH"):
            continue
        found.append((number, stripped.lstrip("#")))
    return found


def usage_commands(path: Path) -> list[Command]:
    """The commands a file's usage comment gives (`cd ... && sbatch ...`, `python X.py --prefetch`, ...).

    A command starts at `cd`, `sbatch`, `python`, `bash`, `source`, `cp` or `cat` and runs to the end of the line,
    a full stop, comma or semicolon followed by a space, a gap of three spaces, a bracket or a backtick. Prose such
    as "sbatch reads the lines" yields words that name no file; the checker looks only at words that look like paths.
    """
    found = []
    for number, line in header_comment(path):
        for piece in USAGE_PIECES.split(line):
            match = USAGE_COMMAND.search(piece)
            if match:
                found.append(Command(path, number, match.group(0).strip()))
    return found


def strip_comment(text: str) -> str:
    """The command without its trailing `# comment` (a # inside quotes or inside a word is kept)."""
    quote, previous = "", " "
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and previous.isspace():
            return text[:index].rstrip()
        previous = char
    return text


def words(text: str) -> list[Simple]:
    """The simple commands of a command line: their words (quotes removed; `<id>` kept as a placeholder word
    holding PLACEHOLDER_MARK) and the files their output redirections write."""
    marked = ANGLE_PLACEHOLDER.sub(lambda m: f"{PLACEHOLDER_MARK}{m[1]}{PLACEHOLDER_MARK}", strip_comment(text))
    lexer = shlex.shlex(marked, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to plain words
        tokens = marked.split()
    found, current, redirect = [], Simple(), ""
    for token in tokens:
        if redirect:
            if redirect in OUTPUT_REDIRECTS:
                current.creates.append(token)
            redirect = ""
        elif token in SEPARATORS:
            if current.words:
                found.append(current)
            current = Simple()
        elif token in OUTPUT_REDIRECTS or token in OTHER_REDIRECTS:
            redirect = token
            if current.words and current.words[-1].isdigit():  # 2>file: the 2 belongs to the redirection
                current.words.pop()
        else:
            current.words.append(token)
    if current.words:
        found.append(current)
    return found


def is_placeholder(word: str) -> bool:
    """A word the reader fills in: <jobid>, $VAR, a glob, or a name in capitals with an underscore (YOUR_NAME)."""
    return (PLACEHOLDER_MARK in word or "$" in word or any(c in word for c in "*?[]{}")
            or re.search(r"(?:^|[/.=@])[A-Z][A-Z0-9]*_[A-Z0-9_]+(?:$|[/.@])", word) is not None)


# --- the student's walk: the exercise commands of a lesson, as a test runs them ------------------------------------

JOB_PLACEHOLDERS = re.compile(r"<(?:job[_-]?)?id>", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    """One exercise command of a lesson, as the student's walk (tests/test_student_path.py) runs it."""
    command: Command
    run: str  # what the shell runs: the line as written (`watch squeue --me` becomes one `squeue --me`)
    submits: bool  # it submits a job: its output names the job id
    waits: bool  # afterwards the student waits until the submitted jobs have left the queue


def student_steps(page: Path) -> list[Step]:
    """The commands of a lesson's {exercise} and {solution} blocks, in page order, as the student types them.

    `watch squeue --me` (which runs until Ctrl+C) becomes one `squeue --me`; after it, and after a plain
    `squeue --me` (the solutions follow the job "PD, then R, then gone"), the walk waits until the jobs submitted so
    far have left the queue, as the student does before reading their output.
    """
    steps = []
    for command in exercise_commands(page):
        simple = [_command_words(s.words) for s in words(command.text)]
        text = command.text
        waits = any(ws[:2] == ["squeue", "--me"] or ws[:3] == ["watch", "squeue", "--me"] for ws in simple)
        if any(ws[:1] == ["watch"] for ws in simple):
            text = re.sub(r"^\s*watch\s+(?:-\S+\s+)*", "", text)
        steps.append(Step(command, text, any(ws[:1] == ["sbatch"] for ws in simple), waits))
    return steps


def _command_words(ws: list[str]) -> list[str]:
    """The words from the command name on (without `NAME=value` settings in front)."""
    while ws and re.match(r"^[A-Za-z_]\w*=", ws[0]):
        ws = ws[1:]
    return ws


def with_job_id(text: str, job_id: str, examples: set[str] = frozenset()) -> str:
    """The command for the job just submitted: `<id>`/`<jobid>` and the page's example ids become `job_id`."""
    text = JOB_PLACEHOLDERS.sub(job_id, text)
    for example in examples:
        text = re.sub(rf"(?<!\d){example}(?!\d)", job_id, text)
    return text


# --- the set-up block and the "Check your work" boxes, as the walk types them ----------------------------------------

CHECK_TITLE = "Check your work"
ADMONITION = re.compile(r"^\s*(?::{3,}|`{3,})\{admonition\}\s*(?P<title>.*?)\s*$")


def block_commands(path: Path, holding: str) -> list[Command]:
    """The commands of the page's first code block (a parsed-literal one too) with a line that holds `holding`, one
    per logical line, such as before-the-course's set-up block (`jutil env activate ...`, `git clone ...`)."""
    for block in blocks(path):
        if any(holding in line for line in block.lines):
            return [Command(path, block.line + 1 + start, text, block.directives, block.line)
                    for start, text in logical_lines(list(enumerate(block.lines)))]
    return []


def check_commands(path: Path) -> list[Command]:
    """The commands of the page's "Check your work" boxes (admonitions with that title), in page order."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    found = []
    for block in blocks(path):
        if "admonition" not in block.directives:
            continue
        title = next((m["title"] for m in map(ADMONITION.match, reversed(lines[:block.line - 1])) if m), "")
        if title == CHECK_TITLE:
            found.extend(block.commands())
    return found


PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")  # a Python interpreter by name


def interpreted_program(args: list[str]) -> tuple[str | None, list[str]]:
    """The program file an interpreter runs, and the arguments after it (None for -c and -m)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-c", "-m"):
            return None, []
        if arg in ("-W", "-X", "-o", "-O") and not arg.startswith("--"):
            index += 2 if arg in ("-W", "-X") else 1
            continue
        if not arg.startswith("-"):
            return arg, args[index + 1:]
        index += 1
    return None, []
