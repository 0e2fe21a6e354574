"""Serving the `clip_blocks` detector: bundle files, scores, crop-score maps and the stability check.

A bundle holds `model.safetensors` (the probe's standardisation and weights), `card.json` (with the probe's
configuration) and the installed CLIP encoder file. The canonical image of this detector is its working
image (`views.image_working`), not a small square: the views are cut from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import load_file, save_file

from detection.core.block_probe import ARCH, ProbeConfig, ProbeHead
from detection.core.card import ModelCard
from detection.core.features import EMBED_SLICE, BlockEncoder
from detection.core.files import CARD_FILE, MODEL_FILE, NoTrainedWeights, card_load, card_save
from detection.core.metrics import logits_of
from detection.core.preprocess import image_jpeg
from detection.core.scoring import ScoringBase, cam_normalise
from detection.core.views import VIEW_SIZE, WORKING_SHORT, image_at_least, image_working, views_pyramid

# The mild re-encoding a verdict must survive: what a platform's own pipeline may do to an upload.
STABILITY_JPEG = 85
STABILITY_SCALE = 0.75
MAP_GRID = 3  # crops per side of the crop-score map
IMAGES_PER_CALL = 8


def block_bundle_save(*, directory: Path, head: ProbeHead, card: ModelCard) -> ModelCard:
    """Write the head and `card`, with this architecture and the head's configuration; returns the card saved."""
    if head.hidden_weight is not None:
        raise ValueError("a probe with a hidden layer is a study lever (crossval_detector --hidden-rows), not a bundle")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {"mean": head.mean, "std": head.std, "weight": head.weight, "bias": np.array([head.bias])}
    save_file({key: value.astype(np.float16) for key, value in tensors.items()}, str(directory / MODEL_FILE))
    (directory / MODEL_FILE).chmod(0o644)
    card = dataclasses.replace(card, arch=ARCH, probe=head.config.to_dict())
    card_save(directory=directory, card=card)
    return card


def block_head_load(*, directory: Path, card: ModelCard) -> ProbeHead:
    tensors = {key: value.astype(np.float32) for key, value in load_file(str(Path(directory) / MODEL_FILE)).items()}
    probe = card.probe
    config = ProbeConfig(**{**probe, "blocks": tuple(probe["blocks"]), "scales": tuple(probe.get("scales", ()))})
    return ProbeHead(
        config=config,
        mean=tensors["mean"],
        std=tensors["std"],
        weight=tensors["weight"],
        bias=float(tensors["bias"][0]),
    )


def image_reencode(image: Image.Image) -> Image.Image:
    """The stability variant: 0.75x (Lanczos) and JPEG 85."""
    width, height = image.size
    smaller = image.convert("RGB").resize(
        (max(1, round(width * STABILITY_SCALE)), max(1, round(height * STABILITY_SCALE))), Image.Resampling.LANCZOS
    )
    return image_jpeg(smaller, quality=STABILITY_JPEG)


class BlockDetector(ScoringBase):
    def __init__(self, *, directory: Path, threads: int | None = None) -> None:
        directory = Path(directory)
        if not (directory / MODEL_FILE).is_file() or not (directory / CARD_FILE).is_file():
            raise NoTrainedWeights(f"no trained weights for {directory.name}")
        card = card_load(directory=directory)
        if not card.encoder_file or not (directory / card.encoder_file).is_file():
            raise NoTrainedWeights(f"no trained weights for {directory.name}")  # encoder not installed
        self.card = card
        self.name, self.version = card.name, str(card.version)
        self.image_size = WORKING_SHORT
        self.crops = 1 if card.crops is None else int(card.crops)
        self.head = block_head_load(directory=directory, card=card)
        self.encoder = BlockEncoder(path=directory / card.encoder_file, threads=threads)

    def canonical(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image_working(image))

    def _features(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        # A few images per encoder call: every block's tokens of a view take 7 MB while they are pooled.
        chunks = []
        for start in range(0, len(arrays), IMAGES_PER_CALL):
            views = np.stack(
                [
                    views_pyramid(Image.fromarray(array), crops=self.crops, scales=self.head.config.scales)
                    for array in arrays[start : start + IMAGES_PER_CALL]
                ]
            )
            features = views_encode_once(self.encoder, views.reshape(-1, *views.shape[2:]))
            chunks.append(features.reshape(*views.shape[:2], -1))
        return np.concatenate(chunks)

    def predict_arrays(self, arrays: Sequence[np.ndarray]) -> list[float]:
        return [float(p) for p in self.head.scores(self._features(arrays))] if len(arrays) else []

    def predict_checked_many(self, images: Sequence[Image.Image]) -> list[tuple[float, float | None]]:
        """The re-encoding is applied to the working image: on a large upload, re-encoding the full
        frame would vanish in the shrink to the working size and test nothing."""
        arrays = [self.canonical(image) for image in images]
        if not self.card.stability:
            return [(probability, None) for probability in self.predict_arrays(arrays)]
        variants = [np.asarray(image_working(image_reencode(Image.fromarray(array)))) for array in arrays]
        probabilities = self.predict_arrays(arrays + variants)  # one pass over both
        return list(zip(probabilities[: len(arrays)], probabilities[len(arrays) :], strict=True))

    def golden_outputs(self, arrays: Sequence[np.ndarray]) -> dict[str, list]:
        features = self._features(arrays)
        logits = self.head.view_logits(features[:, self.head.config.view_indices(features.shape[1])]).mean(axis=1)
        return {
            "embeddings": features[:, 0, EMBED_SLICE].tolist(),
            "logits": logits[:, None].tolist(),
            "probabilities": [float(p) for p in self.head.scores(features)],
        }

    def heatmap_array(self, array: np.ndarray, *, layer: str | None = None) -> np.ndarray:
        """Crop scores: each cell of a 3 x 3 grid of view-sized crops, painted with that crop's AI logit
        above the image's own; where crops overlap, the higher one shows."""
        if layer not in (None, "crops"):
            raise ValueError(f"unknown heatmap layer {layer!r}; clip_blocks has only 'crops'")
        image = image_at_least(Image.fromarray(array))
        boxes = grid_boxes(*image.size)
        crops = np.stack([np.asarray(image.crop(box)) for box in boxes])
        features = self.encoder.features(crops)[:, None]
        logits = self.head.view_logits(features)[:, 0]
        baseline = float(logits_of(self.predict_arrays([array]))[0])
        heat = np.zeros((image.size[1], image.size[0]), dtype=np.float32)
        for (left, top, right, bottom), logit in zip(boxes, logits, strict=True):
            region = heat[top:bottom, left:right]
            np.maximum(region, max(float(logit) - baseline + 1.0, 0.0), out=region)
        heat = np.asarray(Image.fromarray(heat).resize((array.shape[1], array.shape[0]), Image.Resampling.BILINEAR))
        return cam_normalise(heat)


def views_encode_once(encoder: BlockEncoder, views: np.ndarray) -> np.ndarray:
    """`encoder.features(views)`, each distinct view encoded once: an upload no larger than a pyramid scale
    repeats its views there (`views.image_rescaled`), a square one's crop is its whole frame, and the
    encoder's time is nearly all of a verdict's."""
    slots: dict[bytes, int] = {}
    inverse = np.array([slots.setdefault(view.tobytes(), len(slots)) for view in views])
    _, firsts = np.unique(inverse, return_index=True)
    return encoder.features(views[firsts])[inverse]


def grid_boxes(width: int, height: int, *, grid: int = MAP_GRID, size: int = VIEW_SIZE) -> list[tuple[int, ...]]:
    lefts = [round((width - size) * i / (grid - 1)) for i in range(grid)]
    tops = [round((height - size) * i / (grid - 1)) for i in range(grid)]
    return [(left, top, left + size, top + size) for top in tops for left in lefts]


def block_detector_load(
    *, weights_dir: Path, name: str, device: str = "cpu", threads: int | None = None
) -> BlockDetector:
    """Bundle `name` of `weights_dir`: the registry's loader for clip_blocks. `device` is not used: the encoder
    runs in onnxruntime on the CPU."""
    return BlockDetector(directory=Path(weights_dir) / name, threads=threads)
