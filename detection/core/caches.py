"""Caches of training and evaluation inputs, outside git (a `cache_dir` such as /work/cache): the decoded
canonical or base arrays of a list of samples, and the CLIP probe's embeddings of such arrays. Each file is
keyed by what it was made from, so a changed image, size or encoder never reads a stale one."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from detection.core.data import Sample
from detection.core.preprocess import (
    arrays_to_tensor,
    image_canonical,
    image_crop_centre,
    image_decode,
    image_resize_short,
)

if TYPE_CHECKING:  # the TensorFlow trainers share this module and must never load torch or onnxruntime
    from detection.core.clip_probe import ClipEncoder


def _base_size(size: int) -> int:
    # Training crops come from a slightly larger square so random crops/rescales have room. At size 128 that
    # is 144 px, so the seed set's 150 px real photos are downsampled like everything else; at 150 (the Keras
    # seed network) they are enlarged to 168, and the re-shoot's crop and rescale resample both classes anyway.
    return size * 9 // 8


def _array_make(path: Path, *, size: int, kind: str) -> np.ndarray:
    img = image_decode(path.read_bytes())
    if kind == "canonical":
        return np.asarray(image_canonical(img, size=size))
    base = _base_size(size)
    return np.asarray(image_crop_centre(image_resize_short(img, short=base), size=base))


def arrays_cache(
    samples: Sequence[Sample],
    *,
    size: int,
    kind: str,
    cache_dir: Path | None,
    progress: bool = False,
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
    arrays = np.stack(
        [
            _array_make(sample.path, size=size, kind=kind)
            for sample in tqdm(samples, desc=f"decode {kind}", disable=not progress, mininterval=5)
        ]
    )
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache_file, arrays)
    return arrays


def embeddings_cache(
    encoder: ClipEncoder,
    samples,
    *,
    image_size: int,
    cache_dir: Path | None,
    batch_size: int = 16,
) -> np.ndarray:
    """Embeddings of the canonical images of `samples`, cached as .npy beside the canonical cache."""
    arrays = arrays_cache(samples, size=image_size, kind="canonical", cache_dir=cache_dir)
    return embeddings_arrays(encoder, arrays, cache_dir=cache_dir, batch_size=batch_size)


def embeddings_arrays(
    encoder: ClipEncoder,
    arrays: np.ndarray,
    *,
    cache_dir: Path | None,
    batch_size: int = 16,
) -> np.ndarray:
    """Embeddings of canonical uint8 arrays, cached by content."""
    key = hashlib.sha256(arrays.tobytes()).hexdigest()[:20]
    # Keyed by the encoder too: embeddings of another encoder file (or of the saturating int8 kernel) differ.
    cache_file = Path(cache_dir) / f"clip{arrays.shape[1]}_{encoder.sha256[:12]}_{key}.npy" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        return np.load(cache_file)
    chunks = [
        encoder.embed(arrays_to_tensor(arrays[start : start + batch_size])).numpy()
        for start in tqdm(range(0, len(arrays), batch_size), desc="clip embed", mininterval=10)
    ]
    embeds = np.concatenate(chunks).astype(np.float32)
    if cache_file is not None:
        np.save(cache_file, embeds)
    return embeds
