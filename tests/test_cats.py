"""Exercise 2: the cat classifier, through the lesson's story on a machine without internet.

1. On a compute node (no network) with empty caches, cats.py fails at the first download.
2. With the caches filled (the stand-in for `python cats.py --prefetch` on the login node), still without
   network, it trains: accuracy, saved model and TensorBoard logs are checked.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.fixtures_data import SMALL_RUN, Caches, CatRun, run_cats_offline
from harness.minipets import checkpoint_name

ACCURACY_BAR = 0.9  # the stand-in is easy: a network that learned anything gets far above this
NETWORK_ERROR = "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>"

pytestmark = pytest.mark.netns


def test_no_internet_and_empty_caches_fails_at_the_data_set_download(target_dir: Path, empty_caches: Caches,
                                                                      tmp_path: Path) -> None:
    run = run_cats_offline(target_dir / "cats.py", empty_caches, tmp_path / "work", *SMALL_RUN, timeout=300)
    assert run.returncode != 0, run.explain()
    assert NETWORK_ERROR in run.stderr.splitlines(), run.explain()
    assert "untar_data(URLs.PETS)" in run.stderr, "the traceback should point at the data-set download\n" + run.explain()
    assert "Downloading dataset..." in run.stdout and "Finished downloading dataset" not in run.stdout
    assert not (run.workdir / "runs").exists() and not (run.workdir / "models").exists()


def test_no_internet_with_only_the_data_set_fails_at_the_weights_download(target_dir: Path, seeded_caches: Caches,
                                                                          tmp_path: Path) -> None:
    (seeded_caches.checkpoints / checkpoint_name("resnet34")).unlink()
    run = run_cats_offline(target_dir / "cats.py", seeded_caches, tmp_path / "work", *SMALL_RUN, timeout=300)
    assert run.returncode != 0, run.explain()
    assert "Finished downloading dataset" in run.stdout, run.explain()
    assert NETWORK_ERROR in run.stderr.splitlines(), run.explain()
    assert "vision_learner(" in run.stderr, "the traceback should point at the weights download\n" + run.explain()


def test_filled_caches_train_offline_to_the_bar(cat_run: CatRun) -> None:
    print("cat_run RESULT:", cat_run.result)  # the figures, for -rP or -s
    assert cat_run.returncode == 0, cat_run.explain()
    assert cat_run.result, "no RESULT line\n" + cat_run.explain()
    assert cat_run.result["device"] == "cpu"
    assert cat_run.result["epochs"] == int(SMALL_RUN[SMALL_RUN.index("--epochs") + 1])
    assert cat_run.result["accuracy"] >= ACCURACY_BAR, cat_run.explain()
    assert cat_run.result["error_rate"] == pytest.approx(1 - cat_run.result["accuracy"], abs=1e-3)
    assert cat_run.result["images_per_second"] > 0 and cat_run.result["seconds_per_epoch"] > 0
    assert "device: cpu" in cat_run.stdout


def test_training_saves_the_best_model(cat_run: CatRun) -> None:
    assert cat_run.model_file.is_file(), cat_run.explain()
    import torch

    state = torch.load(cat_run.model_file, map_location="cpu", weights_only=False)
    weights = state.get("model", state) if isinstance(state, dict) else state
    assert any(key.endswith("weight") for key in weights), f"{cat_run.model_file} holds no network weights"


def test_training_logs_the_loss_for_tensorboard(cat_run: CatRun) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(cat_run.runs_dir.glob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event files in {cat_run.runs_dir}\n" + cat_run.explain()
    accumulator = EventAccumulator(str(cat_run.runs_dir))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert "train_loss" in scalars, f"scalar tags: {scalars}"
    losses = accumulator.Scalars("train_loss")
    assert len(losses) >= 2 and all(event.value == event.value for event in losses)  # logged per batch, no NaN
    assert "accuracy" in scalars, f"scalar tags: {scalars}"


def test_prefetch_with_filled_caches_stops_without_training(target_dir: Path, seeded_caches: Caches,
                                                            tmp_path: Path) -> None:
    run = run_cats_offline(target_dir / "cats.py", seeded_caches, tmp_path / "work", "--prefetch", timeout=300)
    assert run.returncode == 0, run.explain()
    assert str(seeded_caches.images) in run.stdout, run.explain()
    assert str(seeded_caches.checkpoints) in run.stdout, run.explain()
    assert "RESULT" not in run.stdout and "epoch" not in run.stdout
    assert not (run.workdir / "runs").exists() and not (run.workdir / "models").exists()


@pytest.mark.parametrize("args, option", [(["--epochs", "0"], "--epochs"), (["--arch", "resnet35"], "--arch")])
def test_bad_input_gives_one_line_error(target_dir: Path, tmp_path: Path, args: list[str], option: str) -> None:
    done = subprocess.run([sys.executable, str(target_dir / "cats.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line
             and not line.startswith("  warnings.warn")]
    assert len(lines) == 1 and option in lines[0] and "Traceback" not in done.stderr, done.stderr
