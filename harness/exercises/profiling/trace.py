"""A reader of the Chrome/Perfetto JSON trace torch.profiler writes (`prof.export_chrome_trace`): where the time of
each profiled training step went.

Why hand-parsed: HolisticTraceAnalysis reads the same files but analyses GPU kernels and their overlap; the question
here is on the CPU side (how long the step waited for the DataLoader), and a CPU-only trace has no kernels at all.
The format (Trace Event Format, "X" complete events with `ts` and `dur` in microseconds) is stable: the profiler
marks each step as a span `ProfilerStep#N` (from `prof.step()`), and the DataLoader marks each batch it hands out
as `enumerate(DataLoader)#<iterator class>.__next__`, on the thread that asked for it.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

STEP = re.compile(r"^ProfilerStep#(\d+)$")
LOADER = re.compile(r"^enumerate\(DataLoader\)#\w+\.__next__$")


class TraceError(ValueError):
    """The file is not a trace that answers the question; the message says what is missing."""


@dataclass(frozen=True)
class Span:
    name: str
    thread: tuple  # (pid, tid)
    start: float  # microseconds
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class StepTimes:
    """The profiled steps of one trace: each step's length and the DataLoader's time inside it (microseconds)."""
    steps: tuple[int, ...]
    step_us: tuple[float, ...]
    loader_us: tuple[float, ...]

    @property
    def loader_share(self) -> float:
        """The DataLoader's share of a profiled step (0..1): the median of the steps' own shares. A pause of the
        whole process (another program took the core, the machine swapped) lands in whatever part of one step
        runs at that moment; the median ignores a few such steps, where the share of the summed times would not
        (one step stalled for 240 ms turned a share of 0.89 per step into 0.61 of the sum, seen here)."""
        shares = sorted(loader / step for loader, step in zip(self.loader_us, self.step_us) if step > 0)
        if not shares:
            return 0.0
        middle = len(shares) // 2
        return shares[middle] if len(shares) % 2 else (shares[middle - 1] + shares[middle]) / 2

    @property
    def median_step_ms(self) -> float:
        """The median step's length in milliseconds (median, for the same reason as the share)."""
        steps = sorted(self.step_us)
        middle = len(steps) // 2
        return (steps[middle] if len(steps) % 2 else (steps[middle - 1] + steps[middle]) / 2) / 1000


def load(path: Path):
    """The trace's JSON, from a plain or a gzipped file (`*.json.gz`, which Perfetto opens as it is)."""
    path = Path(path)
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return json.loads(text)


def spans(path: Path) -> list[Span]:
    """The complete events ("ph": "X") of a trace file, as spans."""
    try:
        data = load(path)
    except (OSError, EOFError, json.JSONDecodeError) as error:
        raise TraceError(f"{Path(path).name} is not a readable JSON trace ({error})") from None
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise TraceError(f"{Path(path).name} holds no traceEvents: is it a trace of torch.profiler?")
    return [Span(str(e.get("name", "")), (e.get("pid"), e.get("tid")), float(e["ts"]), float(e.get("dur", 0)))
            for e in events if isinstance(e, dict) and e.get("ph") == "X" and "ts" in e]


def overlap(a: Span, b: Span) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def step_times(path: Path) -> StepTimes:
    """Each `ProfilerStep#N` span and the time DataLoader `__next__` spans of its thread took inside it."""
    found = spans(path)
    steps = sorted((s for s in found if STEP.match(s.name)), key=lambda s: s.start)
    if not steps:
        raise TraceError(f"{Path(path).name} holds no ProfilerStep#N span: call prof.step() once per training step "
                         "inside `with profile(..., schedule=...)`")
    loaders = [s for s in found if LOADER.match(s.name)]
    return StepTimes(tuple(int(STEP.match(s.name).group(1)) for s in steps), tuple(s.duration for s in steps),
                     tuple(sum(overlap(step, l) for l in loaders if l.thread == step.thread) for step in steps))


def has_gpu_kernels(path: Path) -> bool:
    """Whether the trace recorded work on a GPU (events of category `kernel`: CUDA was profiled and used)."""
    data = load(path)
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    return any(isinstance(e, dict) and e.get("cat") == "kernel" for e in events)
