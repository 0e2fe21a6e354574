"""Worker-side access to the detectors. Imports a framework lazily, and loads each model once per process.

A process holds torch or TensorFlow, never both (together they crash). `DETECTOR_FRAMEWORK` says which:
"torch" (the default: the gpu worker, the embedded portal) serves PyTorch bundles in-process and Keras
bundles through a TensorFlow child process; "keras" (the keras worker) serves Keras bundles in-process and
hands any other job back to the gpu queue.
"""

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from detection.core.scoring import ScoringBase

KERAS_QUEUE = "keras"
TORCH_QUEUE = "gpu"


class ServedElsewhere(RuntimeError):
    """This process cannot load the model: its job belongs on `queue`."""

    def __init__(self, *, name: str, queue: str) -> None:
        super().__init__(f"{name} is served by the {queue} queue's workers")
        self.queue = queue


@lru_cache(maxsize=4)
def _detector_cached(weights_dir: str, name: str, device: str, framework: str) -> "ScoringBase":
    from detection.core.files import bundle_is_keras

    if bundle_is_keras(weights_dir=Path(weights_dir), name=name):
        if framework == "keras":
            from detection.core.keras.inference import keras_detector_load

            return keras_detector_load(weights_dir=Path(weights_dir), name=name)
        from detection.core.keras.proxy import KerasDetectorProxy

        return KerasDetectorProxy(weights_dir=Path(weights_dir), name=name)
    if framework == "keras":
        raise ServedElsewhere(name=name, queue=TORCH_QUEUE)
    from detection.core.selftest import detector_load_verified

    return detector_load_verified(weights_dir=Path(weights_dir), name=name, device=device)


def detector_get(*, name: str) -> "ScoringBase":
    """Raises detection.core.files.NoTrainedWeights when the model has no trained weights, ServedElsewhere in
    the keras worker for a PyTorch model."""
    return _detector_cached(
        str(settings.DETECTOR_WEIGHTS_DIR), name, settings.DETECTOR_DEVICE, settings.DETECTOR_FRAMEWORK
    )
