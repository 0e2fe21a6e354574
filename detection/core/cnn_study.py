"""A CNN under the leave-source-out protocol: fine-tuned once per fold (crossval.outer_scores), so that it can
be compared with the CLIP probe, and fused with it, on the very same folds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import count
from pathlib import Path

import numpy as np

from detection.core.caches import arrays_cache
from detection.core.crossval import Fit
from detection.core.data import Sample
from detection.core.inference import detector_load
from detection.core.train import train_run


def groups_apart(samples: Sequence[Sample], *, share: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """`samples` in two parts by whole groups, a seeded `share` of the groups in the second (early stopping)."""
    groups = sorted({sample.group for sample in samples})
    random.Random(seed).shuffle(groups)
    second = set(groups[: max(1, round(len(groups) * share))])
    return [s for s in samples if s.group not in second], [s for s in samples if s.group in second]


def cnn_fit_for(
    samples: Sequence[Sample],
    *,
    arch: str,
    out_dir: Path,
    epochs: int,
    image_size: int,
    start_file: Path | None,
    head: str = "seed",
    lr: float = 5e-4,
    val_share: float = 0.15,
    seed: int = 0,
    progress: bool = False,
) -> Fit:
    """Each call fine-tunes `arch` (the shipped MobileNetV2's recipe by default) on the training indices it is
    given, stopping on the validation loss of a seeded share of their groups, saves the bundle as
    `out_dir/fold<n>` and returns the scorer of its canonical images. No image arrays are cached: each fold's
    lists differ, so a cache keyed by list would store every image once per fold and never be read again."""
    fits = count()

    def fit(train: np.ndarray):
        name = f"fold{next(fits)}"
        fitted, val = groups_apart([samples[i] for i in train], share=val_share, seed=seed)
        train_run(
            arch=arch,
            train=fitted,
            val=val,
            out_dir=out_dir,
            name=name,
            epochs=epochs,
            image_size=image_size,
            head=head,
            lr=lr,
            patience=epochs,
            seed=seed,
            start_file=start_file,
            progress=progress,
        )
        detector = detector_load(weights_dir=out_dir, name=name)

        def score(indices: np.ndarray) -> np.ndarray:
            chosen = [samples[i] for i in indices]
            arrays = arrays_cache(chosen, size=image_size, kind="canonical", cache_dir=None)
            return np.asarray(detector.predict_arrays(list(arrays)))

        return score

    return fit
