"""Training images without a framework: the canonical-image cache and the augmentation against dataset
look, shared by the PyTorch and the Keras trainers."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from tqdm import tqdm

from detection.core.data import Sample
from detection.core.preprocess import (
    CANONICAL_JPEG_QUALITY,
    image_canonical,
    image_crop_centre,
    image_decode,
    image_jpeg,
    image_resize_short,
)

_RESAMPLERS = (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR)


def _base_size(size: int) -> int:
    # Training crops come from a slightly larger square so random crops/rescales have room; still at
    # most 150 px for size 128, so the 150 px real photos are downsampled like everything else.
    return size * 9 // 8


def _array_make(path: Path, *, size: int, kind: str) -> np.ndarray:
    img = image_decode(path.read_bytes())
    if kind == "canonical":
        return np.asarray(image_canonical(img, size=size))
    base = _base_size(size)
    return np.asarray(image_crop_centre(image_resize_short(img, short=base), size=base))


def arrays_cache(
    samples: Sequence[Sample], *, size: int, kind: str, cache_dir: Path | None, progress: bool = False,
) -> np.ndarray:
    """uint8 N x S x S x 3 of every sample: "canonical" (exactly the serving path, for val/test) or
    "base" (short side size*9/8, no JPEG, for augmented training). Cached as .npy when cache_dir is set,
    keyed by paths, sizes and mtimes, so epochs and reruns skip decoding large files."""
    key = hashlib.sha256(f"{kind}{size}".encode())
    for sample in samples:
        stat = sample.path.stat()
        key.update(f"{sample.path.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    cache_file = Path(cache_dir) / f"{kind}{size}_{key.hexdigest()[:20]}.npy" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        return np.load(cache_file)
    arrays = np.stack([
        _array_make(sample.path, size=size, kind=kind)
        for sample in tqdm(samples, desc=f"decode {kind}", disable=not progress, mininterval=5)
    ])
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache_file, arrays)
    return arrays


def image_augment(array: np.ndarray, *, size: int, rng: random.Random) -> np.ndarray:
    """A random "re-shoot" of a base image ending in the canonical JPEG step: random crop and
    rescale, flips, colour jitter, blur, noise and JPEG at quality 30-95 on both classes alike, so
    sharpness, blockiness and colour cast of either data set stop being class cues."""
    img = Image.fromarray(array)
    side = img.size[0]
    crop = max(size // 2, round(side * math.sqrt(rng.uniform(0.45, 1.0))))
    left, top = rng.randint(0, side - crop), rng.randint(0, side - crop)
    img = img.crop((left, top, left + crop, top + crop)).resize((size, size), rng.choice(_RESAMPLERS))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        # Low-resolution source: shrink and enlarge again.
        small = max(16, round(size * rng.uniform(0.45, 0.9)))
        img = img.resize((small, small), rng.choice(_RESAMPLERS)).resize((size, size), rng.choice(_RESAMPLERS))
    if rng.random() < 0.8:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(rng.uniform(0.75, 1.25))
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 1.2)))
    if rng.random() < 0.5:
        img = image_jpeg(img, quality=rng.randint(30, 95))
    out = np.asarray(img, dtype=np.float32)
    if rng.random() < 0.2:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(1, 6), out.shape)
        out = np.clip(out + noise, 0, 255)
    return np.asarray(image_jpeg(Image.fromarray(out.round().astype(np.uint8)), quality=CANONICAL_JPEG_QUALITY))
