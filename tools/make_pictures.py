"""Regenerate the book's real-output pictures from real runs, never by hand:

* book/images/generated/cats-training-log.txt  the cat classifier's training log (solutions/cats.py, a short CPU run
                                               on the Mini-Pets stand-in, progress bars removed)
* book/images/screenshots/tensorboard-through-tunnel.png
                                               TensorBoard over that run's runs/, started by solutions/tensorboard.sh,
                                               seen in headless Chromium through solutions/tunnel.sh (`ssh -N -L`)
                                               to an OpenSSH server on 127.0.0.1
* book/images/generated/squeue-me.txt          `squeue --me` of the local test cluster's course user with four of the
                                               course's batch jobs queued on its two nodes (needs
                                               slurm/local-cluster/start.sh; skipped otherwise)

    .venv/bin/python -m tools.make_pictures [--only log,tensorboard,squeue] [--epochs 3]

The jobs are submitted as the cluster's course user (as root, through runuser), never as root: JURECA takes no
jobs from root, and the listing shows the user a student sees. Everything runs offline in temporary folders.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "book" / "images" / "generated"
SCREENSHOTS = ROOT / "book" / "images" / "screenshots"
TRAINING_LOG = GENERATED / "cats-training-log.txt"
TENSORBOARD_PNG = SCREENSHOTS / "tensorboard-through-tunnel.png"
SQUEUE_TXT = GENERATED / "squeue-me.txt"
PICTURES = ("log", "tensorboard", "squeue")

PROGRESS = re.compile(r"(Epoch \d+/\d+ ?:)?\s*\|[█\-]*\|\s*[\d.]+% \[\d+/\d+ [^\]]*\]")


def clean_log(raw: str) -> str:
    """A terminal log without fastprogress's redrawn bars: what a student reads in output.<jobid>."""
    lines = []
    for line in raw.replace("\r", "\n").splitlines():
        line = PROGRESS.sub("", line).replace("█", "")
        line = re.sub(r"(Epoch \d+/\d+ :\s*)+", "", line).rstrip()
        if line.strip():
            lines.append(line)
    return "\n".join(lines) + "\n"


def train(work: Path, epochs: int, size: int) -> Path:
    """One short run of solutions/cats.py on the stand-in data, in `work`; returns the cleaned log's text file."""
    from harness import minipets

    caches = work / "caches"
    minipets.seed_fastai_home(caches / "fastai")
    minipets.seed_torch_home(caches / "torch")
    knobs = {"EPOCHS": str(epochs), "SIZE": str(size)}
    env = {**os.environ, "FASTAI_HOME": str(caches / "fastai"), "TORCH_HOME": str(caches / "torch"),
           "PYTHONWARNINGS": "ignore", **knobs}
    shown = " ".join(f"{k}={v}" for k, v in knobs.items()) + " python cats.py"
    shutil.copy(ROOT / "solutions" / "cats.py", work / "cats.py")
    print(f"training: {shown} (Mini-Pets stand-in, CPU; a few minutes)", flush=True)
    run = subprocess.run([sys.executable, "cats.py"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=3600)
    if run.returncode != 0:
        raise SystemExit(f"cats.py failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    TRAINING_LOG.parent.mkdir(parents=True, exist_ok=True)
    TRAINING_LOG.write_text(f"$ {shown}\n" + clean_log(run.stdout + run.stderr))
    print(f"wrote {TRAINING_LOG.relative_to(ROOT)}")
    return work / "runs"


def screenshot_tensorboard(runs: Path, work: Path) -> None:
    """TensorBoard of `runs` through a real SSH tunnel, photographed by Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    from harness.browser import CHROMIUM, CHROMIUM_ARGS, is_local
    from harness.exercises.tunnel.parts import start_sshd, start_tensorboard, start_tunnel

    outside: list[str] = []

    def guard(route, request) -> None:  # noqa: ANN001 (Playwright objects)
        if is_local(request.url):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    with start_sshd(work / "sshd") as server, \
            start_tensorboard(ROOT / "solutions" / "tensorboard.sh", runs, log=work / "tensorboard.log") as board, \
            start_tunnel(ROOT / "solutions" / "tunnel.sh", server, board.port, log=work / "tunnel.log") as tunnel, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(work / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        try:
            page = context.new_page()
            page.route("**/*", guard)
            page.goto(f"http://127.0.0.1:{tunnel.port}/#timeseries", wait_until="networkidle")
            page.wait_for_selector("canvas, svg.line-chart, .line-chart", timeout=60_000)
            show_scalars_only(page)
            page.wait_for_timeout(5000)  # let the charts finish drawing
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(TENSORBOARD_PNG))
        finally:
            context.close()
    if outside:
        print(f"note: TensorBoard asked the internet for {len(outside)} resource(s), blocked: {outside[:3]}")
    print(f"wrote {TENSORBOARD_PNG.relative_to(ROOT)} (TensorBoard on 127.0.0.1:{board.port}, "
          f"tunnel from 127.0.0.1:{tunnel.port})")


def show_scalars_only(page) -> None:  # noqa: ANN001 (a Playwright Page)
    """The loss and accuracy curves are what the lesson talks about: hide the settings pane and the image card."""
    for action in (lambda: page.locator("button, mat-button-toggle").filter(has_text=re.compile(r"^\s*Scalars\s*$")).first.click(timeout=5000),
                   lambda: page.locator("button[aria-label='Close side pane'], .settings-pane button.close, "
                                        "button[aria-label*='lose settings']").first.click(timeout=3000)):
        try:
            action()
        except Exception as err:  # noqa: BLE001 (TensorBoard's markup changes between versions: keep the default view)
            print(f"note: TensorBoard view not adjusted ({str(err).splitlines()[0]})")
    page.mouse.move(5, 880)  # no hover tooltip over a chart


def squeue_listing(work: Path) -> None:
    """Queue four of the course's batch jobs on the two-node local cluster as its course user, capture
    `squeue --me` while two run and two wait, cancel all four."""
    from harness import slurm
    from harness.localcluster import submit_env, cluster_up
    from harness.users import as_course_user, course_user

    if not cluster_up():
        print("squeue: skipped, the local cluster is not up (sudo bash slurm/local-cluster/start.sh)")
        return
    from harness.exercises.cats import Caches

    for name in ("matrix_gpu.py", "cats.py"):
        shutil.copy(ROOT / "solutions" / name, work / name)
    caches = Caches(work / "caches" / "fastai", work / "caches" / "torch").seed()
    venv = Path(os.path.expanduser(f"~{course_user()}")) / "course" / "venv-template"
    if os.geteuid() == 0:
        os.chmod(work.parent, 0o755)
        subprocess.run(["chown", "-R", course_user(), str(work)], check=True)
    # Jobs that run long enough to be seen: big matrices on the CPU, one epoch of the cat stand-in
    knobs = {"jureca-matrix.sbatch": {"SIZE": "4096"},
             "fastai.sbatch": {**caches.env(), "COURSE_VENV": str(venv), "EPOCHS": "1", "SIZE": "32"}}
    scripts = ["jureca-matrix.sbatch", "fastai.sbatch"] if (venv / "venv").is_dir() else ["jureca-matrix.sbatch"]
    env = submit_env()

    def as_course(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """harness.slurm's runner for this picture: Slurm's commands as the course user, without our Lmod."""
        return subprocess.run(as_course_user(argv), **{"env": env, **kwargs})

    jobs: list[str] = []
    try:
        # Each job asks for a whole local node (its 2 cores): two run, the third waits for a node (Resources),
        # the fourth for its turn behind the third (Priority).
        for script in (scripts * 4)[:4]:
            done = slurm.run_sbatch(["--cpus-per-task=2", ROOT / "slurm" / script], cwd=work,
                                    env={**env, **knobs[script]}, runner=as_course)
            job_id = slurm.job_id_of(done)
            if job_id is None:
                raise SystemExit(f"sbatch {script} refused: {done.stderr.strip()}")
            jobs.append(job_id)
        args = ["--me", "--jobs", ",".join(jobs)]
        deadline = time.monotonic() + 60
        shown = ""
        while time.monotonic() < deadline:
            shown = slurm.listing(args, as_course)
            if len(re.findall(r"\s R\s", shown)) == 2 and "(Resources)" in shown and "(Priority)" in shown:
                break
            time.sleep(0.5)
    finally:
        slurm.scancel(jobs, as_course)
    GENERATED.mkdir(parents=True, exist_ok=True)
    SQUEUE_TXT.write_text(f"$ squeue {' '.join(args)}\n{shown}")
    print(f"wrote {SQUEUE_TXT.relative_to(ROOT)} (jobs {', '.join(jobs)} cancelled)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the book's real-output pictures.")
    parser.add_argument("--only", default=",".join(PICTURES),
                        help=f"comma-separated subset of {', '.join(PICTURES)} (default: all)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the stand-in run (default: 3)")
    parser.add_argument("--size", type=int, default=64, help="image size of the stand-in run (default: 64)")
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    if unknown := wanted - set(PICTURES):
        parser.error(f"unknown picture(s) {', '.join(sorted(unknown))}: choose from {', '.join(PICTURES)}")
    with tempfile.TemporaryDirectory(prefix="make-pictures-") as tmp:
        work = Path(tmp)
        if wanted & {"log", "tensorboard"}:
            runs = train(work, args.epochs, args.size)
            if "tensorboard" in wanted:
                screenshot_tensorboard(runs, work)
        if "squeue" in wanted:
            (work / "jobs").mkdir()
            squeue_listing(work / "jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
