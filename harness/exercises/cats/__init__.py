"""Exercise 2: the fastai cat classifier, and why a compute node without internet makes it fail.

Everything about it lives here: the stand-in caches (FASTAI_HOME/TORCH_HOME, the one place that sets them), the
offline runs the tests use, the one training run shared by the tests, and the cluster job with its login-node step
(prefetch on a real login node, stand-ins on the test cluster) and its verdict.
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import minipets
from harness.exercises import BenchPart, ClusterJob, Exercise
from harness.exercises.cats.fits import fit_of
from harness.offline import Ran, run_program
from harness.once import made_once, once_per_run

PER_BREED = 16  # 592 pictures: enough to learn in three short epochs, small enough for a two-core CPU
SMALL_RUN = {"EPOCHS": "3", "SIZE": "32"}  # the script's own knobs for a short CPU run
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Caches:
    """A pair of cache folders and the environment that points a program at them."""

    fastai_home: Path
    torch_home: Path

    @property
    def images(self) -> Path:
        return self.fastai_home / "data" / minipets.DATASET_FOLDER / "images"

    @property
    def checkpoints(self) -> Path:
        return self.torch_home / "hub" / "checkpoints"

    def env(self) -> dict[str, str]:
        return {"FASTAI_HOME": str(self.fastai_home), "TORCH_HOME": str(self.torch_home)}

    def seed(self, per_breed: int = PER_BREED, images_from: Path | None = None,
             checkpoint_from: Path | None = None) -> "Caches":
        """Fill both caches with the stand-ins, as a login-node download would (copies where given)."""
        minipets.seed_fastai_home(self.fastai_home, per_breed=per_breed, images_from=images_from)
        minipets.seed_torch_home(self.torch_home, "resnet34", checkpoint_from=checkpoint_from)
        return self


def run_cats(script: Path, caches: Caches, workdir: Path, *args: str, knobs: dict[str, str] | None = None,
             how: str | None = None, timeout: float = RUN_TIMEOUT_S) -> Ran:
    """Run `script` in `workdir` as on a compute node: no network, the given caches, the short-run knobs."""
    # One math thread: on a shared two-core machine, OpenMP threads spinning for each other made training ten
    # times slower than a single thread.
    env = {**os.environ, **caches.env(), **(SMALL_RUN if knobs is None else knobs), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("SLURM_CPUS_PER_TASK", None)
    return run_program([sys.executable, str(script), *args], cwd=workdir, env=env, offline=True, how=how,
                       timeout=timeout)


def label_problems(fit) -> list[str]:
    """The labels the training saw are the lesson's: True for a cat (Pets names cat breeds with a capital first
    letter: `Abyssinian_1.jpg`), False for a dog (`beagle_1.jpg`). An inverted is_cat() learns just as well, so
    only the labels themselves tell."""
    if not fit.labels:
        return ["the training's labels could not be read (is `dls` made with ImageDataLoaders.from_name_func?)"]
    wrong = [(name, label) for name, label in fit.labels if label != str(name[:1].isupper())]
    if wrong:
        name, label = wrong[0]
        animal = "a cat" if name[:1].isupper() else "a dog"
        return [f"cats.py labelled {name} ({animal}) {label}: is_cat() must return True for cat pictures, whose "
                f"file names start with a capital letter ({len(wrong)} of {len(fit.labels)} labels checked are wrong)"]
    return []


# --- fixtures ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def minipets_originals(tmp_path_factory: pytest.TempPathFactory) -> Caches:
    """Stand-ins drawn once per test run (shared by the xdist workers); other fixtures copy them."""
    def caches(root: Path) -> Caches:
        return Caches(root / "fastai", root / "torch")

    return caches(made_once(tmp_path_factory, "minipets-originals", lambda root: caches(root).seed()))


def copy_of(originals: Caches, root: Path) -> Caches:
    name = minipets.checkpoint_name("resnet34")
    return Caches(root / "fastai", root / "torch").seed(images_from=originals.images,
                                                        checkpoint_from=originals.checkpoints / name)


def _empty(root: Path) -> Caches:
    caches = Caches(root / "fastai", root / "torch")
    caches.fastai_home.mkdir(parents=True, exist_ok=True)
    caches.torch_home.mkdir(parents=True, exist_ok=True)
    return caches


def _without_weights(originals: Caches, root: Path) -> Caches:
    caches = copy_of(originals, root)
    (caches.checkpoints / minipets.checkpoint_name("resnet34")).unlink()
    return caches


# The runs of the lesson's story, each (its caches, its arguments): all started at once, since three of them are
# mostly fastai's import and end at a download; on two cores that halves the wait for a student's verdict.
STORY = {
    "train": (copy_of, ()),  # filled caches, no network: trains
    "empty": (lambda originals, root: _empty(root), ()),  # nothing cached: fails at the data set's download
    "no_weights": (_without_weights, ()),  # only the data set: fails at the weights' download
    "prefetch": (copy_of, ("--prefetch",)),  # the login node's step with filled caches: stops before training
}


@pytest.fixture(scope="session")
def cats_runs(target_dir: Path, minipets_originals: Caches, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The target's cats.py in each situation of STORY, offline, once per test run (shared by the xdist workers)."""
    from concurrent.futures import ThreadPoolExecutor

    with once_per_run(tmp_path_factory, f"cats-runs-{target_dir.name}") as root:
        if all((root / f"{name}.json").exists() for name in STORY):
            return {name: Ran.load(root / f"{name}.json") for name in STORY}

        def one(name: str) -> Ran:
            make, args = STORY[name]
            caches = make(minipets_originals, root / name / "caches")
            run = run_cats(target_dir / "cats.py", caches, root / name / "work", *args)
            run.save(root / f"{name}.json")
            return run

        with ThreadPoolExecutor(len(STORY)) as pool:
            return dict(zip(STORY, pool.map(one, STORY)))


@pytest.fixture(scope="session")
def cat_run(cats_runs: dict) -> Ran:
    """The target's cats.py trained once per test run, offline, with filled caches."""
    return cats_runs["train"]


# --- the cluster job -----------------------------------------------------------------------------------------------

def site_caches(run) -> Caches:
    """The caches a cluster run's jobs read: where the site keeps them, else folders of the run (stand-ins)."""
    site, default = run.site, run.folder / "caches"
    return Caches(Path(site.expand(site.caches.fastai_home) or default / "fastai"),
                  Path(site.expand(site.caches.torch_home) or default / "torch"))


def site_pictures(run) -> Path:
    """The real Pets pictures that `python cats.py --prefetch` (exercise 2b) downloaded into the site's caches:
    what the day-2 exercises pack and read on a real cluster."""
    images = site_caches(run).images
    if not any(images.glob("*.jpg")):
        raise RuntimeError(f"no Pets pictures in {images}: run `python cats.py --prefetch` on the login node first "
                           "(exercise 2b)")
    return images


def prepare_caches(run, workdir: Path) -> dict[str, str]:
    """The login-node step: the data set and the weights into the caches the job reads, as the site says."""
    site, caches = run.site, site_caches(run)
    if site.caches.prepare == "minipets":
        run.log(f"seeding stand-in caches (Mini-Pets, resnet34 weights) in {caches.fastai_home.parent}")
        caches.seed()
    else:  # "prefetch": the lesson's own step, on a login node that has internet
        lines = [*site.setup, f"cd {shlex.quote(str(workdir))}", "python cats.py --prefetch"]
        run.login_shell("prefetch", lines, run.login_env(caches.env()), workdir / "prefetch.log")
    return caches.env()


def check_cats_job(result) -> tuple[dict, list[str]]:
    """The training's figures from the reporter; the bar of the site; the model and the TensorBoard logs."""
    fits = [fit for fit in map(fit_of, result.reports) if fit is not None]
    if not fits:
        return {}, ["cats.py did not train: its report holds no fastai training"]
    fit = fits[-1]
    best = fit.best
    figures = {"error_rate": best.get("error_rate"), "accuracy": best.get("accuracy"), "epochs": len(fit.epochs),
               "seconds_per_epoch": round(fit.seconds_per_epoch or 0, 2),
               "images_per_second": round(fit.images_per_second or 0, 1), "device": fit.gpu_name or fit.device}
    problems = []
    bar = result.settings["error_rate_max"]
    if not isinstance(best.get("error_rate"), float):
        problems.append("the training reported no error rate: the learner needs metrics=[accuracy, error_rate]")
    elif best["error_rate"] > bar:
        problems.append(f"error rate {best['error_rate']:.4f} is above the bar {bar} of {result.site.path.name}")
    problems += label_problems(fit)
    if result.site.gpus_real and not fit.device.startswith("cuda"):
        problems.append(f"trained on `{fit.device}`, but {result.site.name} has GPUs: torch saw no CUDA device")
    if not (result.workdir / "models" / "model.pth").is_file():
        problems.append("models/model.pth was not saved (SaveModelCallback, learner path='.')")
    if not list((result.workdir / "runs").rglob("events.out.tfevents.*")):
        problems.append("no TensorBoard event files under runs/")
    return figures, problems


EXERCISE = Exercise(
    key="cats", number=2, title="cat classifier", day=1, lesson="book/cats.md",
    programs=("cats.py",), tests=("tests/test_cats.py",), wait_target_s=60.0,
    bench_parts=(BenchPart("data-pipeline", "harness.exercises.cats.bench", {
        "images": (int, 1480, "stand-in images (default 1480)"), "size": (int, 224, "Resize side (default 224)"),
        "batch_size": (int, 64, "batch size (default 64)")}),),
    cluster_jobs=(ClusterJob(name="cats", sbatch="fastai.sbatch", programs=("cats.py",), check=check_cats_job,
                             needs_venv=True, prepare=prepare_caches, settings={"error_rate_max": (float, 0.02)},
                             figures={"seconds_per_epoch": "lower", "images_per_second": "higher"}),),
)
