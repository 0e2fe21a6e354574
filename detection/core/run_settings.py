"""What a detector training run was asked for, shared by the PyTorch and the Keras trainers: their steps follow
it and their cards record it. Free of torch and TensorFlow, as both trainers import it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from detection.core.caches import arrays_cache
from detection.core.data import Sample
from detection.core.transforms import AUGMENTS, NATIVE


@dataclass(frozen=True)
class RunSettings:
    """The arguments of train_run or keras_mobilenet_train that both take, held together so that their
    steps take one argument instead of a dozen."""

    out_dir: Path
    name: str
    epochs: int
    image_size: int
    batch_size: int
    seed: int
    augment: str  # one of AUGMENTS
    patience: int
    lr: float
    weight_decay: float
    false_flag: float
    cache_dir: Path | None
    split_file: str | None
    data_fingerprint: str | None
    version: str | None
    progress: bool

    def __post_init__(self) -> None:
        if self.augment not in (*AUGMENTS, NATIVE):
            raise ValueError(f"augment {self.augment!r}: one of {', '.join(AUGMENTS)}")

    @classmethod
    def picked(cls, arguments: dict[str, object]) -> RunSettings:
        """The settings among a trainer's `arguments` (its `locals()` on entry): each trainer keeps its own
        signature and defaults, and neither spells the settings out again."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})


def run_arrays_load(
    *, settings: RunSettings, train: Sequence[Sample], val: Sequence[Sample]
) -> tuple[np.ndarray, np.ndarray]:
    """The training images (base arrays to re-shoot when augmenting, else canonical) and the canonical
    validation images, both through the arrays cache."""
    if settings.augment == NATIVE:
        raise ValueError("native crops are cut from working images: give the run its arrays")
    train_arrays = arrays_cache(
        train,
        size=settings.image_size,
        kind="canonical" if settings.augment == "none" else "base",
        cache_dir=settings.cache_dir,
        progress=settings.progress,
    )
    val_arrays = arrays_cache(
        val, size=settings.image_size, kind="canonical", cache_dir=settings.cache_dir, progress=settings.progress
    )
    return train_arrays, val_arrays


def run_training_record(*, settings: RunSettings) -> dict:
    """The first keys of a card's `training`, the same in both trainers' cards."""
    return {
        "epochs_max": settings.epochs,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "augment": settings.augment,
        "lr": settings.lr,
        "weight_decay": settings.weight_decay,
    }


def class_weights_balanced(labels: np.ndarray) -> np.ndarray:
    """Class-balanced: each class weighs as much in the loss, whatever its count."""
    return len(labels) / (2 * np.bincount(labels, minlength=2))
