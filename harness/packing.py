"""Pets pictures packed by the course's own pack.py: on this machine for the tests, and on the login node as the
preparation of a cluster job that reads packed files.

Not an exercise: every exercise whose programs read the packed files (a timing of the readers, a training) uses
it, each with the pack.py of the target it checks.
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from harness import minipets
from harness.offline import Ran, program_env, run_program

RUN_TIMEOUT_S = 300


def pack(script: Path, images: Path, out: Path, cwd: Path) -> Ran:
    """`python pack.py IMAGES OUT` (`script` is that pack.py), as on the login node, the reporter on."""
    return run_program([sys.executable, str(script), str(images), str(out)], cwd=cwd, env=program_env(),
                       timeout=RUN_TIMEOUT_S)


def prepare(run, workdir: Path, settings: dict, real_images: Callable[[], Path], files: tuple[str, ...],
            need_images: bool = True) -> tuple[Path | None, Path]:
    """The login-node step of a job that reads packed pictures: the pictures (stand-ins where the site seeds
    stand-ins, `settings["standin_per_breed"]` per breed; else `real_images()`, the real Pets a lesson downloaded),
    packed by the pack.py staged in `workdir`. A site's `packed_dir` keeps the packed `files` between runs (the
    real Pets make about 1.6 GB): packed there once, then reused and never rewritten here (a job of this run may be
    reading them already). Returns (the pictures, or None when they were not needed; the packed folder)."""
    packed = Path(run.site.expand(settings["packed_dir"])) if settings["packed_dir"] else workdir / "packed"
    reuse = bool(settings["packed_dir"]) and all((packed / name).is_file() for name in files)
    images = None
    if need_images or not reuse:
        if run.site.caches.prepare == "minipets":
            images = workdir / "images"
            run.log(f"writing {len(minipets.BREEDS) * settings['standin_per_breed']} stand-in pictures to {images}")
            minipets.write_images(images, per_breed=settings["standin_per_breed"])
        else:
            images = real_images()
    if reuse:
        run.log(f"reusing {packed} (packed_dir of {run.site.path.name}; delete it to pack again)")
    else:
        python = "python" if run.site.setup else shlex.quote(sys.executable)  # no set-up: the harness's own Python
        lines = [*run.site.setup, f"cd {shlex.quote(str(workdir))}",
                 f"{python} pack.py {shlex.quote(str(images))} {shlex.quote(str(packed))}"]
        run.login_shell("packing", lines, run.login_env(), workdir / "pack.log")
    return images, packed
