"""Example traces for students without a GPU: solutions/profile_train.py, run here on Mini-Pets stand-ins, writes
the traces of the start and of the fix; they are gzipped (Perfetto opens them as they are) into a folder of the book.

    python -m harness.exercises.profiling.example book/traces

Real runs only: the files are what the profiler wrote, compressed, never edited. STEPS=4 keeps them small (two
profiled steps each)."""
from __future__ import annotations

import gzip
import sys
import tempfile
from pathlib import Path

from harness.exercises import ROOT
from harness.exercises.profiling import checks
from harness.exercises.profiling.runs import run_profile, write_pictures

RUNS = (("jpeg", "fp32"), ("preloaded", "fp32"))


def write_examples(out: Path, steps: int = 4) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="profiling-example-") as tmp:
        images = write_pictures(Path(tmp) / "images")
        for loader, precision in RUNS:
            workdir = Path(tmp) / loader
            ran = run_profile(ROOT / "solutions" / "profile_train.py", images, workdir, loader, precision,
                              STEPS=str(steps))
            times, problems = checks.read_trace(ran, workdir, loader, precision)
            if problems:
                raise SystemExit(f"example.py: LOADER={loader}: {problems[0]}")
            target = out / f"{loader}-{precision}.json.gz"
            target.write_bytes(gzip.compress(checks.trace_path(workdir, loader, precision).read_bytes(), mtime=0))
            print(f"{target}: {len(times.steps)} steps, loader share {times.loader_share:.2f}, "
                  f"median step {times.median_step_ms:.1f} ms")
            written.append(target)
    return written


if __name__ == "__main__":
    write_examples(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "book" / "traces")
