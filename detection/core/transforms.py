"""Transforms of training images: the random "re-shoot" against dataset look, framework-free, shared by the
PyTorch and the Keras trainers."""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from detection.core.preprocess import CANONICAL_JPEG_QUALITY, image_jpeg

_RESAMPLERS = (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR)


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
