"""Part gpu-figures: the figures of the latest `pytest --cluster` run, next to the course's own A100 run.

Nothing runs here (there is no GPU on the benchmark machine): the summaries the cluster run left under
slurm-out/<run-tag>/<test>/ are read back.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.report import Part

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "slurm-out"
COURSE_A100 = {"seconds_per_epoch": 42.0, "error_rate": 0.007}  # the course's own run, one epoch on an A100
FIGURES = ("seconds_per_epoch", "images_per_second", "error_rate", "accuracy", "tflops", "device")


def latest_run(out: Path = OUT) -> Path | None:
    """The run folder holding the newest job verdict (harness/cluster_run.py writes <run>/<job>/summary.json)."""
    summaries = sorted(out.glob("*/*/summary.json"), key=lambda p: p.stat().st_mtime)
    return summaries[-1].parent.parent if summaries else None


def figures_of(summary: Path) -> dict[str, str]:
    """The flat keys of a job's verdict (its state and figures)."""
    try:
        data = json.loads(summary.read_text(errors="replace"))
    except json.JSONDecodeError:
        data = {}
    flat: dict[str, str] = {}
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                (stack.append(value) if isinstance(value, (dict, list)) else flat.setdefault(key, str(value)))
        elif isinstance(node, list):
            stack.extend(node)
    return flat


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _number(value: str | None):
    try:
        return float(value) if value is not None else "-"
    except ValueError:
        return value


def run(out: Path = OUT) -> Part:
    part = Part("gpu-figures", "figures of the latest `pytest --cluster` run vs the course's A100 run",
                headers=["source", "state", "device", "seconds/epoch", "images/s", "error rate", "TFLOP/s"])
    run_dir = latest_run(out)
    if run_dir is None:
        part.notes.append(f"no `pytest --cluster` summary found under {_shown(out)}/*/*/summary.json")
    else:
        for summary in sorted(run_dir.glob("*/summary.json")):
            found = {k.lower().replace("-", "_"): v for k, v in figures_of(summary).items()}
            tflops = next((v for k, v in found.items() if "tflop" in k), None)
            part.rows.append([f"{run_dir.name}/{summary.parent.name}", found.get("state", "-"),
                              found.get("device", "-"),
                              _number(found.get("seconds_per_epoch")), _number(found.get("images_per_second")),
                              _number(found.get("error_rate")), _number(tflops)])
        part.notes.append(f"read from {_shown(run_dir)}")
        if any(str(row[2]).lower() == "cpu" for row in part.rows):
            part.notes.append("device cpu: that run was on a cluster without GPUs (e.g. the local test cluster with "
                              "its small stand-in settings), so its figures say nothing about GPU speed")
    part.rows.append(["course reference (1 epoch, resnet34, real Pets)", "-", "A100", COURSE_A100["seconds_per_epoch"],
                      "-", COURSE_A100["error_rate"], "-"])
    return part
