"""A fastai training as exercise 2's probe (probe.py) recorded it in a process's report, read back for the checks."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.report import Report


@dataclass
class Fit:
    """One fastai `fit`: per-epoch rows (loss, metrics, seconds), training images and seconds, the device."""
    epochs: list[dict] = field(default_factory=list)
    device: str = ""
    gpu_name: str | None = None
    train_images: int = 0
    train_seconds: float = 0.0
    labels: list = field(default_factory=list)  # [file name, label] of the first training items

    @property
    def best(self) -> dict:
        """The epoch with the lowest validation loss: the one SaveModelCallback keeps."""
        rows = [row for row in self.epochs if isinstance(row.get("valid_loss"), float)]
        return min(rows, key=lambda row: row["valid_loss"]) if rows else (self.epochs[-1] if self.epochs else {})

    @property
    def seconds_per_epoch(self) -> float | None:
        seconds = [row["seconds"] for row in self.epochs if "seconds" in row]
        return sum(seconds) / len(seconds) if seconds else None

    @property
    def images_per_second(self) -> float | None:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None


def fit_of(report: Report) -> Fit | None:
    """The last fastai training of the process, if it trained with fastai."""
    fits = report.probed.get("fits") or []
    if not fits:
        return None
    return Fit(**{key: value for key, value in fits[-1].items() if key in Fit.__dataclass_fields__})
