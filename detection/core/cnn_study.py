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
from detection.core.data import Sample, groups_assign
from detection.core.inference import detector_load
from detection.core.train import train_run


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
    given, stopping on the validation loss of a seeded share of their groups (dealt per class and scenery, so
    both classes are in it), saves the bundle as `out_dir/fold<n>` and returns the scorer of its canonical
    images. No image arrays are cached: each fold's lists differ, so a cache keyed by list would store every
    image once per fold and never be read again."""
    fits = count()

    def fit(train: np.ndarray):
        name = f"fold{next(fits)}"
        chosen = [samples[i] for i in train]
        part = groups_assign(chosen, fractions=(1 - val_share, val_share), rng=random.Random(seed))
        fitted = [sample for sample in chosen if part[sample.group] == 0]
        val = [sample for sample in chosen if part[sample.group] == 1]
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
