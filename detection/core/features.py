"""Frozen CLIP features from every transformer block, and their cache.

The shipped encoder graph already computes each block's tokens; `graph_with_blocks` only declares them
as outputs (no new weights, no new file: done in memory at load, so the file's pinned sha256 still
holds). Per block we keep the CLS token and the mean of the 196 patch tokens (RINE-style: early blocks
keep the low-level traces a generator leaves, which the last layer has abstracted away).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from detection.core.clip_probe import CLIP_MEAN, CLIP_STD, EMBED_DIM, ENCODER_SHA256
from detection.core.files import file_sha256
from detection.core.onnx_session import cpu_session

BLOCKS = 12
WIDTH = 768
BLOCK_NODE = "/vision_model/encoder/layers.{}/Add_1"  # the residual sum that ends each block
# Feature layout per view: [block 0..11 CLS | block 0..11 patch mean | final image embedding].
FEATURE_DIM = 2 * BLOCKS * WIDTH + EMBED_DIM
EMBED_SLICE = slice(2 * BLOCKS * WIDTH, FEATURE_DIM)


def block_outputs(model: onnx.ModelProto) -> list[str]:
    """Names of the tensors that end each block (the last one is named by the exporter, not the node)."""
    by_node = {node.name: node.output[0] for node in model.graph.node}
    missing = [BLOCK_NODE.format(index) for index in range(BLOCKS) if BLOCK_NODE.format(index) not in by_node]
    if missing:
        raise ValueError(f"the encoder graph has no {missing[0]}: not the expected CLIP ViT-B/16 tower")
    return [by_node[BLOCK_NODE.format(index)] for index in range(BLOCKS)]


def graph_with_blocks(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of the encoder graph that also outputs every block's tokens ([batch, 197, 768])."""
    names = block_outputs(model)
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    declared = {output.name for output in extended.graph.output}
    for name in names:
        if name not in declared:
            extended.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", 197, WIDTH])
            )
    return extended, names


class BlockEncoder:
    """uint8 views (N x 224 x 224 x 3) -> float32 features (N x FEATURE_DIM)."""

    def __init__(self, *, path: Path, threads: int | None = None) -> None:
        if file_sha256(path) != ENCODER_SHA256:
            raise ValueError(f"{path} is not the expected CLIP encoder (sha256 mismatch)")
        graph, names = graph_with_blocks(onnx.load(str(path)))
        self.session = cpu_session(graph.SerializeToString(), threads=threads)
        self.outputs = ["image_embeds", *names]

    def features(self, views: np.ndarray) -> np.ndarray:
        pixels = views.astype(np.float32) / 255.0
        pixels = (pixels - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
        embeds, *blocks = self.session.run(self.outputs, {"pixel_values": pixels.transpose(0, 3, 1, 2)})
        tokens = np.stack(blocks, axis=1)  # N x 12 x 197 x 768
        cls = tokens[:, :, 0].reshape(len(views), -1)
        patches = tokens[:, :, 1:].mean(axis=2).reshape(len(views), -1)
        embeds = embeds / np.maximum(np.linalg.norm(embeds, axis=1, keepdims=True), 1e-8)
        return np.concatenate([cls, patches, embeds], axis=1).astype(np.float32)


def feature_slices(*, blocks: Sequence[int], cls: bool = True, patches: bool = True, embed: bool = False) -> np.ndarray:
    """Column indices of the chosen blocks' CLS and/or patch-mean features (and the final embedding)."""
    columns: list[np.ndarray] = []
    for block in blocks:
        if cls:
            columns.append(np.arange(block * WIDTH, (block + 1) * WIDTH))
        if patches:
            columns.append(np.arange((BLOCKS + block) * WIDTH, (BLOCKS + block + 1) * WIDTH))
    if embed:
        columns.append(np.arange(2 * BLOCKS * WIDTH, FEATURE_DIM))
    return np.concatenate(columns)


class FeatureCache:
    """Features of one image's views, on disk as fp16 `.npy` keyed by the image's content, the view
    recipe and the encoder: resumable, shared by every experiment that uses the same views."""

    def __init__(self, *, directory: Path, recipe: str) -> None:
        key = hashlib.sha256(f"{recipe}|{ENCODER_SHA256}".encode()).hexdigest()[:12]
        self.directory = Path(directory) / f"features_{key}"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _file(self, content_key: str) -> Path:
        return self.directory / content_key[:2] / f"{content_key}.npy"

    def get(self, content_key: str) -> np.ndarray | None:
        path = self._file(content_key)
        return np.load(path) if path.is_file() else None

    def put(self, content_key: str, features: np.ndarray) -> None:
        path = self._file(content_key)
        path.parent.mkdir(exist_ok=True)
        partial = path.with_suffix(".partial.npy")
        np.save(partial, features.astype(np.float16))
        partial.replace(path)


def folder_short_cap(samples: Sequence, *, ceiling: int) -> int:
    """The short side every image of one data folder is brought down to before its working image: the
    smaller of the two classes' median short sides (at most `ceiling`). The seed set's real photos are
    150 px and its AI images 384 px: without this, resolution alone would tell the classes apart."""
    from PIL import Image

    shorts: dict[int, list[int]] = {}
    for sample in samples:
        with Image.open(sample.path) as img:
            shorts.setdefault(sample.label, []).append(min(img.size))
    return int(min([ceiling, *(np.median(values) for values in shorts.values())]))


def features_extract(
    samples: Sequence,
    *,
    encoder: BlockEncoder,
    cache: FeatureCache,
    crops: int,
    short_caps: dict[str, int],
    folder_of: Callable[[object], str],
    progress: Callable[[int, int], None] | None = None,
    batch_views: int = 12,
    rescale: int | None = None,
    reshot: int = 0,
) -> np.ndarray:
    """N x (1 + crops) x FEATURE_DIM fp16 features of `samples`, computed where the cache lacks them; with
    `rescale`, of each working image shrunk again to that short side (`views.image_rescaled`: one layer of
    `views.views_pyramid`); with `reshot` = k > 0, of the k-th re-shot copy of each working image
    (`transforms.image_reshot`, seeded by the image's content and k, so the cache stays valid)."""
    from detection.core.preprocess import image_decode
    from detection.core.transforms import image_reshot
    from detection.core.views import image_rescaled, image_working, rescale_needed, views_make

    out = np.zeros((len(samples), 1 + crops, FEATURE_DIM), dtype=np.float16)
    pending: list[tuple[int, str, np.ndarray]] = []

    def flush() -> None:
        features = encoder.features(np.concatenate([views for _, _, views in pending]))
        for offset, (index, key, _) in enumerate(pending):
            chunk = features[offset * (1 + crops) : (offset + 1) * (1 + crops)]
            cache.put(key, chunk)
            out[index] = chunk
        pending.clear()

    for index, sample in enumerate(samples):
        data = sample.path.read_bytes()
        cap = short_caps[folder_of(sample)]
        content = hashlib.sha256(data).hexdigest()[:32]
        base_key = f"{content}_cap{cap}_crops{crops}" + (f"_reshot{reshot}" if reshot else "")
        key = f"{base_key}_s{rescale}" if rescale else base_key
        cached = cache.get(key)
        if cached is None and rescale and not rescale_needed(cap, short=rescale):
            cached = cache.get(base_key)  # no working image of this folder is larger than `cap`: the same views
        if cached is not None:
            out[index] = cached
            continue
        working = image_working(image_decode(data), short=cap)
        if reshot:
            working = image_reshot(working, rng=random.Random(f"{content}:{reshot}"))
        if rescale:
            working = image_rescaled(working, short=rescale)
        pending.append((index, key, views_make(working, crops=crops)))
        if len(pending) * (1 + crops) >= batch_views:
            flush()
            if progress:
                progress(index + 1, len(samples))
    if pending:
        flush()
    return out
