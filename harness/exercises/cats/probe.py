"""Exercise 2's probe: what harness/jobsite/sitecustomize.py records inside cats.py for the verdict, without a line
in the student's file. Loaded by file inside the program (it imports nothing of the harness); read back by
harness.exercises.cats.fit_of.

`fits`: per fastai fit, its device, training images and seconds, one row per epoch (loss, metrics, seconds) and the
labels of the first training items (what the student's label function made of them).
"""
from __future__ import annotations

import os
import time


def after_fastai_learner(learner_module, report: dict, detail: list) -> None:
    from fastai.callback.core import Callback

    class CourseFigures(Callback):
        """Seconds per epoch, training images per second, metrics per epoch: for the harness's verdict."""
        order = 99  # after the Recorder has written the epoch's values

        def before_fit(self):
            self.figures = {"epochs": [], "device": str(getattr(self.dls, "device", "")), "train_images": 0,
                        "train_seconds": 0.0, "gpu_name": None}
            device = getattr(self.dls, "device", None)
            if device is not None and getattr(device, "type", "") == "cuda":
                import torch
                self.figures["gpu_name"] = torch.cuda.get_device_name(device)
            self.figures["labels"] = self.some_labels()
            report.setdefault("fits", []).append(self.figures)

        def some_labels(self, count=40):
            """[file name, label] of the first training items: what the student's label function made of them."""
            try:
                data = self.dls.train_ds
                vocab = list(self.dls.vocab)
                return [[os.path.basename(str(data.items[i])), str(vocab[int(data.tls[1][i])])]
                        for i in range(min(count, len(data.items)))]
            except Exception:  # noqa: BLE001 (another kind of data set: no labels to show)
                return []

        def before_epoch(self):
            self.epoch_started = time.perf_counter()

        def before_train(self):
            self.train_started = time.perf_counter()

        def after_batch(self):
            if self.training:
                self.figures["train_images"] += len(self.learn.yb[0]) if self.learn.yb else 0

        def after_train(self):
            self.figures["train_seconds"] += time.perf_counter() - self.train_started

        def after_epoch(self):
            names = [str(n) for n in self.recorder.metric_names]
            values = self.recorder.log
            row = {name: (float(value) if isinstance(value, (int, float)) or hasattr(value, "__float__")
                          else str(value)) for name, value in zip(names, values) if name not in ("epoch", "time")}
            row["seconds"] = round(time.perf_counter() - self.epoch_started, 3)
            self.figures["epochs"].append(row)

    original = learner_module.Learner.__init__

    def init_with_figures(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            self.add_cb(CourseFigures())
        except Exception:  # noqa: BLE001
            pass

    learner_module.Learner.__init__ = init_with_figures


HOOKS = {"fastai.learner": after_fastai_learner}
