"""What a benchmark part returns, and how it is shown: a plain-text table for the terminal, Markdown for RESULTS.md."""
from __future__ import annotations

from dataclasses import dataclass, field


class Skipped(Exception):
    """A prerequisite is missing (no Slurm, no book, ...): the part prints `skipped: <reason>` instead of figures."""


@dataclass
class Check:
    """One figure against its target, e.g. speed-up 1.8x against >= 1.6x. PASS/MISS is information, not a test."""

    name: str
    value: float
    target: float
    higher_is_better: bool = True
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        verdict = "PASS" if self.met else "MISS"
        return f"{verdict} {self.name}: {fmt(self.value)}{self.unit} (target {sign} {fmt(self.target)}{self.unit})"


@dataclass
class Part:
    """The outcome of one benchmark part."""

    name: str
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list]]] = field(default_factory=list)  # (caption, headers, rows)
    skipped: str | None = None


def fmt(value) -> str:
    """Numbers short enough for a table: 3 significant figures below 100, whole numbers above."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def text_table(headers: list[str], rows: list[list]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) for r in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers))] + [line([fmt(c) for c in r]) for r in rows])


def render_text(part: Part) -> str:
    out = [f"== {part.name}: {part.title} =="]
    if part.skipped:
        return "\n".join(out + [f"skipped: {part.skipped}"])
    if part.headers:
        out.append(text_table(part.headers, part.rows))
    out += [c.line() for c in part.checks]
    out += part.notes
    for caption, headers, rows in part.tables:
        out += ["", caption + ":", text_table(headers, rows)]
    return "\n".join(out)


def render_markdown(part: Part, measured: str) -> str:
    """One section of RESULTS.md; `measured` says when, where and at which commit."""
    out = [f"## {part.name}: {part.title}", "", measured, ""]
    if part.skipped:
        return "\n".join(out + [f"skipped: {part.skipped}", ""])
    if part.headers:
        out += [markdown_table(part.headers, part.rows), ""]
    out += [f"- **{c.line().split(' ', 1)[0]}** {c.line().split(' ', 1)[1]}" for c in part.checks]
    out += [f"- {n}" for n in part.notes]
    for caption, headers, rows in part.tables:
        out += ["", caption + ":", "", markdown_table(headers, rows)]
    return "\n".join(out + [""])
