"""What every detector does the same way, whatever runs its network: the canonical image, batching,
verdicts, Grad-CAM normalisation and the overlay rendering. Framework-free (numpy, Pillow, matplotlib)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image

from detection.core.card import ModelCard
from detection.core.preprocess import image_canonical
from detection.core.verdicts import verdict_stable

BATCH_SIZE = 32
OVERLAY_ALPHA = 0.45


def cam_normalise(cam: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its 99th percentile: one hot cell cannot wash out the rest."""
    top = float(np.percentile(cam, 99))
    if top <= 0:
        return np.zeros_like(cam, dtype=np.float32)
    return np.clip(cam / top, 0.0, 1.0).astype(np.float32)


def overlay_render(array: np.ndarray, heat: np.ndarray) -> bytes:
    """PNG bytes: a [0, 1] heatmap in the jet colour map blended over the canonical uint8 image."""
    coloured = colormaps["jet"](heat)[..., :3]
    blended = (1 - OVERLAY_ALPHA) * array.astype(np.float32) / 255.0 + OVERLAY_ALPHA * coloured
    buffer = io.BytesIO()
    Image.fromarray((blended * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class ScoringBase:
    """A subclass sets name, version, card and image_size and implements `predict_arrays` (AI probability of
    canonical uint8 arrays) and `heatmap_array` (input-sized map in [0, 1])."""

    name: str
    version: str
    card: ModelCard
    image_size: int

    def predict_arrays(self, arrays: Sequence[np.ndarray]) -> list[float]:
        raise NotImplementedError

    def heatmap_array(self, array: np.ndarray, *, layer: str | None = None) -> np.ndarray:
        raise NotImplementedError

    def predict_checked_embedded(
        self, images: Sequence[Image.Image]
    ) -> list[tuple[float, float | None, np.ndarray | None]]:
        """`predict_checked` of each image and, for a model on a frozen image encoder, the embedding (1 x D) its
        probability came from (None for any other model), so the scenery head reuses it instead of encoding the
        image again; in as few network calls as the model allows (a worker scores its batch here)."""
        return [(probability, variant, None) for probability, variant in self.predict_checked_many(images)]

    def embeddings_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray | None:
        """The frozen encoder's embeddings of canonical arrays; None for a model without one."""
        return None

    def golden_outputs(self, arrays: Sequence[np.ndarray]) -> dict[str, list]:
        """What the self-test compares (detection.core.selftest): at least the AI probabilities; a subclass
        adds what its network exposes before them, which drifts visibly where probabilities saturate."""
        return {"probabilities": self.predict_arrays(arrays)}

    def canonical(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image_canonical(image, size=self.image_size))

    def predict(self, images: Sequence[Image.Image]) -> list[float]:
        probabilities: list[float] = []
        # Canonicalise batch by batch so a long list never holds every canonical copy at once.
        for start in range(0, len(images), BATCH_SIZE):
            chunk = images[start : start + BATCH_SIZE]
            probabilities.extend(self.predict_arrays([self.canonical(img) for img in chunk]))
        return probabilities

    def predict_checked(self, image: Image.Image) -> tuple[float, float | None]:
        """The AI probability and, for a model whose verdict must survive a mild re-encoding, the
        probability of the re-encoded copy (see verdicts.verdict_stable); None where the model does not check."""
        return self.predict_checked_many([image])[0]

    def predict_checked_many(self, images: Sequence[Image.Image]) -> list[tuple[float, float | None]]:
        """`predict_checked` of several images in as few network calls as the model allows."""
        return [(probability, None) for probability in self.predict(images)]

    def verdict(self, probability: float, *, variant: float | None = None) -> str:
        thresholds = self.card.thresholds
        return verdict_stable(probability, variant, low=thresholds.low, high=thresholds.high)

    def heatmap(self, image: Image.Image, *, layer: str | None = None) -> np.ndarray:
        """Grad-CAM map for the AI class, image_size x image_size, float32 in [0, 1] (99th pct = 1)."""
        return self.heatmap_array(self.canonical(image), layer=layer)

    def overlay_array(self, array: np.ndarray, *, layer: str | None = None) -> bytes:
        return overlay_render(array, self.heatmap_array(array, layer=layer))

    def overlay(self, image: Image.Image, *, layer: str | None = None) -> bytes:
        """PNG bytes: the Grad-CAM heatmap blended over the canonical image."""
        return self.overlay_array(self.canonical(image), layer=layer)
