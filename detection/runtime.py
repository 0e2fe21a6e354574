"""Worker-side access to the detector. Imports torch lazily, and loads each model once per process."""

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from detection.core.inference import Detector


@lru_cache(maxsize=4)
def _detector_cached(weights_dir: str, name: str, device: str) -> "Detector":
    from detection.core.inference import detector_load

    return detector_load(weights_dir=Path(weights_dir), name=name, device=device)


def detector_get(*, name: str) -> "Detector":
    """Raises detection.core.inference.NoTrainedWeights when the model has no trained weights."""
    return _detector_cached(str(settings.DETECTOR_WEIGHTS_DIR), name, settings.DETECTOR_DEVICE)
