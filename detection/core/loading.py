"""Open any bundle in this process, PyTorch or Keras, without importing the framework it does not need.

A process may hold one of the two frameworks, never both (TensorFlow and torch in one process crash here):
`detector_open` is for processes that serve one bundle (the commands); a process that must serve both kinds
opens Keras bundles with `isolated=True`, through a TensorFlow child process.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from detection.core.files import CARD_FILE, NoTrainedWeights, card_load
from detection.core.registry import TENSORFLOW, architecture_get
from detection.core.scoring import ScoringBase
from detection.core.selftest import golden_write


def detector_open(
    *, weights_dir: Path, name: str, device: str = "cpu", threads: int | None = None, isolated: bool = False
) -> ScoringBase:
    """The detector of bundle `name`, opened by its architecture's loader (registry.Architecture.loader).
    Raises NoTrainedWeights when bundle `name` has no trained weights."""
    directory = Path(weights_dir) / name
    if not (directory / CARD_FILE).is_file():
        raise NoTrainedWeights(f"no trained weights for {name}")
    architecture = architecture_get(card_load(directory=directory).arch)
    if architecture.framework == TENSORFLOW:
        return _keras_open(weights_dir=weights_dir, name=name, threads=threads, isolated=isolated)
    module, function = architecture.loader.split(":")
    loader = getattr(importlib.import_module(module), function)
    return loader(weights_dir=weights_dir, name=name, device=device, threads=threads)


def _keras_open(*, weights_dir: Path, name: str, threads: int | None, isolated: bool) -> ScoringBase:
    if isolated:
        from detection.core.keras.proxy import KerasDetectorProxy

        return KerasDetectorProxy(weights_dir=weights_dir, name=name)
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    from detection.core.keras.inference import keras_detector_load

    return keras_detector_load(weights_dir=weights_dir, name=name)


def golden_make(*, weights_dir: Path, name: str, isolated: bool = False) -> dict:
    """(Re)write bundle `name`'s golden outputs from its outputs here: for the commands that make a bundle
    and `manage.py detector_golden`, on a machine where the model is known to compute correctly."""
    detector = detector_open(weights_dir=weights_dir, name=name, isolated=isolated)
    return golden_write(directory=Path(weights_dir) / name, detector=detector)
