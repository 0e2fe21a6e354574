"""Transforms of training images: the random "re-shoot" against dataset look, framework-free, shared by the
PyTorch and the Keras trainers."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from detection.core.preprocess import CANONICAL_JPEG_QUALITY, image_jpeg

_RESAMPLERS = (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR)
# What a trainer does to each training image every epoch: the full re-shoot, its crop and mirror only, or nothing.
AUGMENTS = ("reshoot", "geometric", "none")
# Not a trainer's option: a run given working images (cnn_study) crops them at their own scale, then degrades.
NATIVE = "native"


def image_augment(array: np.ndarray, *, size: int, rng: random.Random, photometric: bool = True) -> np.ndarray:
    """A random "re-shoot" of a square base image, enlarged back to `size`: random crop and rescale, then
    `image_degrade`; without `photometric`, only a mirror and the canonical JPEG after the crop."""
    img = Image.fromarray(array)
    side = img.size[0]
    crop = max(size // 2, round(side * math.sqrt(rng.uniform(0.45, 1.0))))
    left, top = rng.randint(0, side - crop), rng.randint(0, side - crop)
    img = img.crop((left, top, left + crop, top + crop)).resize((size, size), rng.choice(_RESAMPLERS))
    if photometric:
        return image_degrade(img, rng=rng)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(image_jpeg(img, quality=CANONICAL_JPEG_QUALITY))


def arrays_augmented(
    arrays: Sequence[np.ndarray], index: Sequence[int], *, augment: str, size: int, rng: random.Random
) -> list[np.ndarray]:
    """The training images at `index` as one step sees them, by `augment` (one of AUGMENTS, or NATIVE); base
    arrays unless "none", which takes the canonical ones as they are, or NATIVE, which takes working images."""
    if augment == "none":
        return [arrays[i] for i in index]
    if augment == NATIVE:
        return [image_native_crop(arrays[i], size=size, rng=rng) for i in index]
    return [image_augment(arrays[i], size=size, rng=rng, photometric=augment == "reshoot") for i in index]


def units_augmented(
    arrays: Sequence[np.ndarray], batch: Sequence[Sequence[int]], *, augment: str, size: int, rng: random.Random
) -> list[np.ndarray]:
    """The images of a batch's units, in order, as `arrays_augmented` makes them. The images of one unit (a
    photo and its content-aligned round trips) share one random draw, the same crop and the same degradation,
    so they differ only in the decoder's trace; an image alone draws from `rng` as `arrays_augmented` does."""
    augmented: list[np.ndarray] = []
    for unit in batch:
        seed = rng.random() if len(unit) > 1 else None
        for i in unit:
            drawn = rng if seed is None else random.Random(seed)
            augmented += arrays_augmented(arrays, [i], augment=augment, size=size, rng=drawn)
    return augmented


def image_native_crop(array: np.ndarray, *, size: int, rng: random.Random) -> np.ndarray:
    """A random size x size crop of a working image at its own scale, then `image_degrade`: never resampled
    to a thumbnail first, so a generator's pixel-level trace reaches the network as it is."""
    height, width = array.shape[:2]
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    return image_degrade(Image.fromarray(array[top : top + size, left : left + size]), rng=rng)


def image_reshot(img: Image.Image, *, rng: random.Random) -> Image.Image:
    """A random "re-shoot" of a working image at its own scale (a crop of 45-100 % of its area, never
    enlarged, so pixels keep the size the detector sees them at), then `image_degrade`."""
    width, height = img.size
    factor = math.sqrt(rng.uniform(0.45, 1.0))
    crop_w, crop_h = max(1, round(width * factor)), max(1, round(height * factor))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    return Image.fromarray(image_degrade(img.crop((left, top, left + crop_w, top + crop_h)), rng=rng))


def image_degrade(img: Image.Image, *, rng: random.Random) -> np.ndarray:
    """Flips, colour jitter, blur, noise, a low-resolution pass and JPEG at quality 30-95, on both classes
    alike, so sharpness, blockiness and colour cast of either data set stop being class cues; the size is
    kept and the canonical JPEG step ends it."""
    width, height = img.size
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        # Low-resolution source: shrink and enlarge again.
        factor = rng.uniform(0.45, 0.9)
        small = (max(16, round(width * factor)), max(16, round(height * factor)))
        img = img.resize(small, rng.choice(_RESAMPLERS)).resize((width, height), rng.choice(_RESAMPLERS))
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
