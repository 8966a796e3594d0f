"""`python -m bench [--only NAME] [--skip NAME]`: run the benchmark parts, print a table each, update RESULTS.md."""
from __future__ import annotations

import argparse
import shlex
import sys
import traceback

from bench import machine, report, results_file

PARTS = ["local-suite", "cluster-overhead", "data-pipeline", "book-build", "student-time", "loader-formats",
         "ddp-scaling", "checkpoint-overhead", "gpu-figures"]


def run_part(name: str, args: argparse.Namespace) -> report.Part:
    """Import a part's module only when it runs, so one broken part cannot stop the others."""
    if name == "local-suite":
        from bench import local_suite
        return local_suite.run(workers=args.suite_workers, select=shlex.split(args.suite_args))
    if name == "cluster-overhead":
        from bench import cluster_overhead
        return cluster_overhead.run(sleeps=args.sleeps, jobs=args.jobs)
    if name == "data-pipeline":
        from bench import data_pipeline
        return data_pipeline.run(images=args.images, size=args.size, batch_size=args.batch_size)
    if name == "book-build":
        from bench import book_build
        return book_build.run()
    if name == "student-time":
        from bench import student_time
        return student_time.run()
    if name == "loader-formats":
        from bench import loader_formats
        return loader_formats.run()
    if name == "ddp-scaling":
        from bench import ddp_scaling
        return ddp_scaling.run()
    if name == "checkpoint-overhead":
        from bench import checkpoint_overhead
        return checkpoint_overhead.run()
    from bench import gpu_figures
    return gpu_figures.run()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=PARTS, metavar="NAME",
                        help=f"run only this part (repeatable): {', '.join(PARTS)}")
    parser.add_argument("--skip", action="append", choices=PARTS, default=[], metavar="NAME",
                        help="leave this part out (repeatable), e.g. --skip local-suite")
    parser.add_argument("--no-record", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    parser.add_argument("--images", type=int, default=1480, help="data-pipeline: stand-in images (default 1480)")
    parser.add_argument("--size", type=int, default=224, help="data-pipeline: Resize side (default 224)")
    parser.add_argument("--batch-size", type=int, default=64, help="data-pipeline: batch size (default 64)")
    parser.add_argument("--sleeps", type=int, nargs="+", default=[5, 20], help="cluster-overhead: job lengths in s")
    parser.add_argument("--jobs", type=int, default=8, help="cluster-overhead: jobs per batch (default 8)")
    parser.add_argument("--suite-workers", default="auto", help="local-suite: value for pytest -n (default auto)")
    parser.add_argument("--suite-args", default="", help="local-suite: pytest arguments selecting a part of the suite")
    args = parser.parse_args(argv)
    for name in ("images", "size", "batch_size", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more")
    if any(s < 0 for s in args.sleeps):
        parser.error("--sleeps must be 0 or more seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [p for p in PARTS if (not args.only or p in args.only) and p not in args.skip]
    sections = {}
    for name in chosen:
        before = machine.load()
        try:
            part = run_part(name, args)
        except report.Skipped as why:
            part = report.Part(name, "", skipped=str(why))
        except KeyboardInterrupt:
            raise
        except Exception as error:  # a broken part is reported, the next part still runs
            traceback.print_exc()
            part = report.Part(name, "", skipped=f"error: {type(error).__name__}: {error}")
        measured = machine.describe(before, machine.load())
        print(report.render_text(part), flush=True)
        print(measured + "\n", flush=True)
        sections[name] = report.render_markdown(part, measured)
    if not args.no_record and sections:
        path = results_file.update(sections, PARTS)
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
