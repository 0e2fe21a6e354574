"""A CNN under the leave-source-out protocol: fine-tuned once per fold (crossval.outer_scores), so that it can
be compared with the CLIP probe, and fused with it, on the very same folds. It looks either at the served
thumbnail (the canonical square) or at crops of the working image at its own scale (`working_images`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import count
from pathlib import Path

import numpy as np

from detection.core.aligned import pair_key
from detection.core.caches import arrays_cache
from detection.core.crossval import Fit, Scorer
from detection.core.data import Sample, groups_assign
from detection.core.inference import detector_load
from detection.core.metrics import logits_of
from detection.core.preprocess import image_decode
from detection.core.train import train_run
from detection.core.transforms import NATIVE
from detection.core.views import crop_boxes, image_at_least, image_working


def working_images(samples: Sequence[Sample], *, shorts: Sequence[int], size: int) -> list[np.ndarray]:
    """Each sample's working image at its folder's short side (`features.folder_short_cap`, so that size says
    nothing of the class), JPEG 90, enlarged only where that side is under the crop `size`."""
    return [
        np.asarray(image_at_least(image_working(image_decode(sample.path.read_bytes()), short=short), size=size))
        for sample, short in zip(samples, shorts, strict=True)
    ]


def native_crops(image: np.ndarray, *, size: int, count: int) -> np.ndarray:
    """`count` size x size crops of a working image at its own scale, spread along its long side."""
    height, width = image.shape[:2]
    return np.stack(
        [
            image[top:bottom, left:right]
            for left, top, right, bottom in crop_boxes(width, height, count=count, size=size)
        ]
    )


def pair_units(samples: Sequence[Sample], indices: Sequence[int], *, pairs: np.ndarray) -> list[list[int]]:
    """Positions in `indices` of the content-aligned pairs' sides (`pairs`: per sample, whether it is one),
    by pair (`aligned.pair_key`)."""
    units: dict[tuple[Path, str], list[int]] = {}
    for position, i in enumerate(indices):
        if pairs[i]:
            units.setdefault(pair_key(samples[i].path), []).append(position)
    return [unit for unit in units.values() if len(unit) > 1]


def cnn_fit_for(
    samples: Sequence[Sample],
    *,
    arch: str,
    out_dir: Path,
    epochs: int,
    image_size: int,
    start_file: Path | None,
    images: Sequence[np.ndarray] | None = None,
    test_crops: int = 3,
    pairs: np.ndarray | None = None,
    head: str = "seed",
    lr: float = 5e-4,
    val_share: float = 0.15,
    seed: int = 0,
    progress: bool = False,
) -> Fit:
    """Each call fine-tunes `arch` (the shipped MobileNetV2's recipe by default) on the training indices it is
    given, stopping on the validation loss of a seeded share of their groups (dealt per class and scenery, so
    both classes are in it), saves the bundle as `out_dir/fold<n>` and returns its scorer. Without `images` it
    trains on re-shot thumbnails and scores the canonical square. With the samples' working images, it trains
    on a random crop of each at its own scale per epoch (then degraded, both classes alike), stops early on
    their centre crops and scores the mean logit of `test_crops` crops. `pairs` marks the sides of
    content-aligned pairs: they only train, a photo and its round trip side by side in one batch with the same
    crop and degradation, never in the early-stopping share. No image arrays are cached: each fold's lists
    differ, so a cache keyed by list would store every image once per fold and never be read again."""
    fits = count()
    paired = np.zeros(len(samples), dtype=bool) if pairs is None else pairs

    def fit(train: np.ndarray):
        name = f"fold{next(fits)}"
        counted = [i for i in train if not paired[i]]
        part = groups_assign(
            [samples[i] for i in counted], fractions=(1 - val_share, val_share), rng=random.Random(seed)
        )
        fitted = [i for i in train if paired[i] or part[samples[i].group] == 0]
        val = [i for i in counted if part[samples[i].group] == 1]
        train_run(
            arch=arch,
            train=[samples[i] for i in fitted],
            val=[samples[i] for i in val],
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
            augment="reshoot" if images is None else NATIVE,
            arrays=None if images is None else _native_arrays(images, fitted, val, size=image_size),
            together=pair_units(samples, fitted, pairs=paired),
        )
        detector = detector_load(weights_dir=out_dir, name=name)
        return _scorer(detector, samples, images, size=image_size, test_crops=test_crops)

    return fit


def _scorer(
    detector, samples: Sequence[Sample], images: Sequence[np.ndarray] | None, *, size: int, test_crops: int
) -> Scorer:
    """AI probabilities of the canonical squares, or with `images` the mean logit of each one's native crops."""
    if images is None:
        return lambda indices: np.asarray(
            detector.predict_arrays(
                list(arrays_cache([samples[i] for i in indices], size=size, kind="canonical", cache_dir=None))
            )
        )

    def score(indices: np.ndarray) -> np.ndarray:
        crops = [crop for i in indices for crop in native_crops(images[i], size=size, count=test_crops)]
        logits = logits_of(detector.predict_arrays(crops)).reshape(len(indices), test_crops)
        return 1 / (1 + np.exp(-logits.mean(axis=1)))

    return score


def _native_arrays(
    images: Sequence[np.ndarray], fitted: Sequence[int], val: Sequence[int], *, size: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """The working images to crop at random for training, and the centre crop of each validation image."""
    return [images[i] for i in fitted], np.stack([native_crops(images[i], size=size, count=1)[0] for i in val])
