"""A tiny scenery head made in the test, on the shipped CLIP encoder: it suggests a chosen scenery for a chosen
image (and, by the same direction in embedding space, for images like it)."""

from pathlib import Path

import numpy as np
import pytest

from detection.core.scenery import OTHER, SCENERIES, SceneryHead, head_save

SHIPPED = Path(__file__).resolve().parent.parent / "detection" / "weights"
ENCODER_MODEL = "clip_probe_aug"
SUGGESTED = "glacier"  # what the `scenery_head` fixture's head suggests for its image


def encoder_embedding(data: bytes) -> np.ndarray:
    """The shipped encoder's embedding of an image, on the path analysis takes; the encoder stays loaded in this
    process (as a worker keeps it), so pages served from here answer without loading it first."""
    from detection.core.clip_probe import ENCODER_FILE
    from detection.core.preprocess import image_decode
    from detection.runtime import detector_get

    if not (SHIPPED / ENCODER_MODEL / ENCODER_FILE).is_file():
        pytest.skip("the CLIP encoder is not installed (./dev installs it: python -m detection.clip_encoder)")
    detector = detector_get(name=ENCODER_MODEL)
    return detector.embeddings_arrays([detector.canonical(image_decode(data))])[0]


def head_pointing_at(*, directory: Path, embedding: np.ndarray, scenery: str) -> Path:
    """A head whose only non-zero class is `scenery`, along `embedding`: that image is suggested `scenery`."""
    from detection.core.clip_probe import ENCODER_SHA256

    classes = (*SCENERIES, OTHER)
    weight = np.zeros((len(classes), embedding.shape[0]), dtype=np.float32)
    weight[classes.index(scenery)] = 20 * embedding
    head = SceneryHead(classes=classes, weight=weight, bias=np.zeros(len(classes), dtype=np.float32), threshold=0.5)
    head_save(
        directory=directory,
        head=head,
        card={"encoder_model": ENCODER_MODEL, "encoder_sha256": ENCODER_SHA256, "image_size": 128},
    )
    return directory


def weights_with_encoder(*, directory: Path, tiny_weights_dir: Path, tiny_model: str) -> Path:
    """A weights folder holding the tiny test model and the shipped CLIP probe (links, nothing copied)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / tiny_model).symlink_to(tiny_weights_dir / tiny_model)
    (directory / ENCODER_MODEL).symlink_to(SHIPPED / ENCODER_MODEL)
    return directory
