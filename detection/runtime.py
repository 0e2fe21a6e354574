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
    from detection.core.scenery import SceneryHead
    from detection.core.scoring import ScoringBase

KERAS_QUEUE = "keras"
TORCH_QUEUE = "gpu"
# PyTorch models' heatmaps: a worker of their own (under the idle CPU policy beside the analysis worker) keeps a
# render from holding up the verdicts behind it; one worker may serve both queues.
HEATMAP_QUEUE = "heatmaps"


class ServedElsewhere(RuntimeError):
    """This process cannot load the model: its job belongs on `queue`."""

    def __init__(self, *, name: str, queue: str) -> None:
        super().__init__(f"{name} is served by the {queue} queue's workers")
        self.name, self.queue = name, queue


def detector_open_checked(*, weights_dir: Path, name: str, device: str, framework: str) -> "ScoringBase":
    """Open bundle `name` for serving in a process running `framework`, then its golden-output self-test:
    a model that computes differently here raises SelfTestFailed (a NoTrainedWeights) and is never served."""
    from detection.core.files import bundle_is_keras
    from detection.core.loading import detector_open
    from detection.core.selftest import golden_check

    keras = bundle_is_keras(weights_dir=weights_dir, name=name)
    if framework == "keras" and not keras:
        raise ServedElsewhere(name=name, queue=TORCH_QUEUE)
    # A torch process serves Keras bundles through a TensorFlow child (`isolated`).
    detector = detector_open(weights_dir=weights_dir, name=name, device=device, isolated=framework != "keras")
    golden_check(directory=weights_dir / name, detector=detector)
    return detector


@lru_cache(maxsize=4)
def _detector_cached(weights_dir: str, name: str, device: str, framework: str) -> "ScoringBase":
    return detector_open_checked(weights_dir=Path(weights_dir), name=name, device=device, framework=framework)


def detector_get(*, name: str) -> "ScoringBase":
    """Raises detection.core.files.NoTrainedWeights when the model has no trained weights or fails its
    self-test here, ServedElsewhere in the keras worker for a PyTorch model."""
    return _detector_cached(
        str(settings.DETECTOR_WEIGHTS_DIR), name, settings.DETECTOR_DEVICE, settings.DETECTOR_FRAMEWORK
    )


@lru_cache(maxsize=2)
def _scenery_head_cached(directory: str) -> "tuple[SceneryHead, dict] | None":
    from detection.core.scenery import HEAD_CARD, head_load

    return head_load(directory=Path(directory)) if (Path(directory) / HEAD_CARD).is_file() else None


def scenery_head_get() -> "tuple[SceneryHead, dict] | None":
    """The scenery head and its card, loaded once per process; None when none is shipped."""
    return _scenery_head_cached(str(settings.SCENERY_HEAD_DIR))
