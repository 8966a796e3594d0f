"""Reference figures: a site profile holds a job's figures (TFLOP/s, images/s, seconds per epoch, ...) to a
reference with a relative tolerance, as ReFrame does per system; a run outside it fails with one line.

In a profile, under the job's table:

    [jobs.<name>.reference]
    <figure> = { value = 42, tolerance = 0.5 }

The exercise module declares which figures a job reports and which direction is better (`ClusterJob.figures`:
"higher" for a rate, "lower" for a time), so a profile cannot hold a figure the job never reports, nor get the
direction wrong. Only the worse side is bounded (a faster machine is no failure): a figure where lower is better
may be at most value x (1 + tolerance), one where higher is better at least value x (1 - tolerance).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BETTER = ("higher", "lower")  # what ClusterJob.figures may say of a figure
KEYS = ("value", "tolerance")


@dataclass(frozen=True)
class Reference:
    figure: str
    value: float
    tolerance: float  # relative, on the worse side: 0.5 = up to 50 % worse than `value`
    better: str  # "higher" or "lower"

    @property
    def limit(self) -> float:
        """The worst the figure may be: at least this (higher is better) or at most this (lower is better)."""
        return self.value * (1 - self.tolerance) if self.better == "higher" else self.value * (1 + self.tolerance)

    def allowed(self) -> str:
        return f"at least {number(self.limit)}" if self.better == "higher" else f"at most {number(self.limit)}"

    def holds(self, figure: float) -> bool:
        return figure >= self.limit if self.better == "higher" else figure <= self.limit


def number(value: float) -> str:
    """A figure as the one-line messages show it: four significant digits (63, 0.0015, 1.234e+04)."""
    return f"{value:.4g}"


def parse(table: Any, declared: dict[str, str], where: str) -> dict[str, Reference]:
    """The references of one job (`table`: its [jobs.<name>.reference]), checked against the figures the job
    declares (`declared`: figure -> better). Bad input raises ValueError, one line naming `where`+key to fix."""
    if not isinstance(table, dict):
        raise ValueError(f"key `{where}` must be a table of figures, e.g. `{where}.<figure> = "
                         "{ value = 42, tolerance = 0.5 }`")
    found = {}
    for figure, entry in table.items():
        key = f"{where}.{figure}"
        if figure not in declared:
            reports = ", ".join(declared) or "none"
            raise ValueError(f"unknown figure `{key}`: the job reports these figures that may hold a reference: "
                             f"{reports}")
        if not isinstance(entry, dict):
            raise ValueError(f"key `{key}` must be a table: `{figure} = {{ value = <reference>, tolerance = "
                             f"<fraction> }}`, not {entry!r}")
        unknown = [k for k in entry if k not in KEYS]
        missing = [k for k in KEYS if k not in entry]
        if unknown:
            raise ValueError(f"unknown key `{key}.{unknown[0]}` (a reference has only {' and '.join(KEYS)}; which "
                             f"direction is better comes from the job: {figure} is better {declared[figure]})")
        if missing:
            raise ValueError(f"missing key `{key}.{missing[0]}` (a reference is `{{ value = <reference>, tolerance = "
                             "<fraction> }`)")
        value, tolerance = entry["value"], entry["tolerance"]
        for name, given in (("value", value), ("tolerance", tolerance)):
            if isinstance(given, bool) or not isinstance(given, (int, float)):
                raise ValueError(f"key `{key}.{name}` must be a number, not {given!r}")
        if not value > 0:
            raise ValueError(f"key `{key}.value` must be above 0 (a measured {figure}), not {value!r}")
        better = declared[figure]
        if better == "higher" and not 0 < tolerance < 1:
            raise ValueError(f"key `{key}.tolerance` must be above 0 and below 1, not {tolerance!r}: higher is better "
                             f"for {figure}, so the run may be that fraction lower (0.75: at least a quarter of the "
                             "reference)")
        if better == "lower" and not tolerance > 0:
            raise ValueError(f"key `{key}.tolerance` must be above 0, not {tolerance!r}: lower is better for "
                             f"{figure}, so the run may be that fraction higher (3: at most four times the reference)")
        found[figure] = Reference(figure, float(value), float(tolerance), better)
    return found


def problems(references: dict[str, Reference], figures: dict, source: str) -> list[str]:
    """One line per referenced figure that is missing from `figures` or outside its tolerance. `source` says where
    the reference is written (e.g. `jobs.<name>.reference of jureca-dc.toml`)."""
    found = []
    for name, reference in references.items():
        figure = figures.get(name)
        held = f"reference {number(reference.value)}, tolerance {number(reference.tolerance)}"
        if isinstance(figure, bool) or not isinstance(figure, (int, float)):
            found.append(f"figure {name} is missing from the job's results, but {source} holds it to a {held} "
                         f"(allowed: {reference.allowed()})")
        elif not reference.holds(figure):
            side = "below" if reference.better == "higher" else "above"
            found.append(f"figure {name} = {number(figure)} is {side} its allowed range: {held} (allowed: "
                         f"{reference.allowed()}; {reference.better} is better), from {source}")
    return found
