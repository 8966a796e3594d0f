"""Exercise 2: the cat classifier, through the lesson's story on a machine without internet.

1. On a compute node (no network) with empty caches, cats.py fails at the first download; with only the data set
   cached, at the second (the weights).
2. With the caches filled (the stand-in for `python cats.py --prefetch` on the login node), still without network,
   it trains: accuracy, saved model and TensorBoard logs are checked; the figures come from the reporter
   (harness/jobsite/sitecustomize.py), not from code in the student's file.
3. `--prefetch` with filled caches stops before training.
The network is taken away without root (the in-process guard) for everybody, and with `unshare -n` as well where
the tests run as root: both ways must fail the same way.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.exercises.cats import SMALL_RUN, Caches, run_cats
from harness.minipets import checkpoint_name
from harness.offline import Ran

ACCURACY_BAR = 0.9  # the stand-in is easy: a network that learned anything gets far above this
NETWORK_ERROR = "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>"


def assert_failed_at(run: Ran, line_of_code: str) -> None:
    """The run failed for want of the internet, and the traceback points at `line_of_code`."""
    assert run.returncode != 0, run.explain()
    assert NETWORK_ERROR in run.stderr.splitlines(), run.explain()
    assert line_of_code in run.stderr, f"the traceback should point at `{line_of_code}`\n" + run.explain()
    assert any(r.network for r in run.reports), "the reporter saw no attempt to reach the internet"


@pytest.mark.parametrize("how", ["guard", pytest.param("netns", marks=pytest.mark.root)])
def test_no_internet_and_empty_caches_fails_at_the_data_set_download(target_dir: Path, empty_caches: Caches,
                                                                      tmp_path: Path, how: str) -> None:
    run = run_cats(target_dir / "cats.py", empty_caches, tmp_path / "work", how=how, timeout=300)
    assert_failed_at(run, "untar_data(URLs.PETS)")
    assert "Downloading dataset..." in run.stdout and "Finished downloading dataset" not in run.stdout
    assert not (run.workdir / "runs").exists() and not (run.workdir / "models").exists()


def test_no_internet_with_only_the_data_set_fails_at_the_weights_download(target_dir: Path, seeded_caches: Caches,
                                                                          tmp_path: Path) -> None:
    (seeded_caches.checkpoints / checkpoint_name("resnet34")).unlink()
    run = run_cats(target_dir / "cats.py", seeded_caches, tmp_path / "work", timeout=300)
    assert "Finished downloading dataset" in run.stdout, run.explain()
    assert_failed_at(run, "vision_learner(")


def test_filled_caches_train_offline_to_the_bar(cat_run: Ran) -> None:
    assert cat_run.returncode == 0, cat_run.explain()
    fits = [r.fit for r in cat_run.reports if r.program == "cats.py" and r.fit]
    assert fits, "cats.py trained nothing (no fastai fit in its report)\n" + cat_run.explain()
    fit = fits[-1]
    print("epochs:", fit.epochs)  # the figures, for -rP or -s
    assert fit.device == "cpu"
    assert len(fit.epochs) == int(SMALL_RUN["EPOCHS"]), f"EPOCHS={SMALL_RUN['EPOCHS']} ran {len(fit.epochs)} epochs"
    best = fit.best
    assert {"accuracy", "error_rate"} <= set(best), f"the learner reports {sorted(best)}: add accuracy and error_rate"
    assert best["accuracy"] >= ACCURACY_BAR, cat_run.explain()
    assert best["error_rate"] == pytest.approx(1 - best["accuracy"], abs=1e-3)
    assert fit.images_per_second and fit.images_per_second > 0 and fit.seconds_per_epoch > 0
    assert not any(r.network for r in cat_run.reports), "the training tried to reach the internet"


def test_training_saves_the_best_model_in_the_working_folder(cat_run: Ran) -> None:
    model = cat_run.workdir / "models" / "model.pth"
    assert model.is_file(), "models/model.pth is missing: the learner's path decides where models/ goes\n" + \
        cat_run.explain()
    import torch

    state = torch.load(model, map_location="cpu", weights_only=False)
    weights = state.get("model", state) if isinstance(state, dict) else state
    assert any(key.endswith("weight") for key in weights), f"{model} holds no network weights"


def test_training_logs_the_loss_for_tensorboard(cat_run: Ran) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = cat_run.workdir / "runs"
    events = sorted(runs.glob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event files in {runs}\n" + cat_run.explain()
    accumulator = EventAccumulator(str(runs))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert "train_loss" in scalars, f"scalar tags: {scalars}"
    losses = accumulator.Scalars("train_loss")
    assert len(losses) >= 2 and all(event.value == event.value for event in losses)  # logged per batch, no NaN
    assert "accuracy" in scalars, f"scalar tags: {scalars}"


def test_prefetch_with_filled_caches_stops_without_training(target_dir: Path, seeded_caches: Caches,
                                                            tmp_path: Path) -> None:
    run = run_cats(target_dir / "cats.py", seeded_caches, tmp_path / "work", "--prefetch", timeout=300)
    assert run.returncode == 0, run.explain()
    assert "Finished downloading dataset" in run.stdout and "On the login node" in run.stdout, run.explain()
    assert not any(r.fit for r in run.reports), "--prefetch trained: training belongs on a compute node"
    assert not (run.workdir / "runs").exists() and not (run.workdir / "models").exists()
