"""A Keras bundle served from a spawned TensorFlow child process, behind the same detector interface.

For every process that imports torch, or may: the pytest process, the embedded portal's in-process tasks,
the PyTorch worker when a Keras job reaches it, `compare_detectors`. This module imports no TensorFlow (nor
torch); the child is started with "spawn", so it inherits neither, loads the bundle once and keeps it.
"""

from __future__ import annotations

import atexit
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from detection.core.card import ModelCard
from detection.core.files import CARD_FILE, KERAS_MODEL_FILE, NoTrainedWeights, card_load
from detection.core.scoring import ScoringBase

_loaded: dict[tuple[str, str], object] = {}  # in the child: the bundles it has loaded


def _child_detector(weights_dir: str, name: str):
    if (weights_dir, name) not in _loaded:
        from detection.core.keras.inference import keras_detector_load

        _loaded[(weights_dir, name)] = keras_detector_load(weights_dir=Path(weights_dir), name=name)
    return _loaded[(weights_dir, name)]


def _child_predict(weights_dir: str, name: str, arrays: list[np.ndarray]) -> list[float]:
    return _child_detector(weights_dir, name).predict_arrays(arrays)


def _child_heatmap(weights_dir: str, name: str, array: np.ndarray, layer: str | None) -> np.ndarray:
    return _child_detector(weights_dir, name).heatmap_array(array, layer=layer)


def _child_golden_outputs(weights_dir: str, name: str, arrays: list[np.ndarray]) -> dict[str, list]:
    return _child_detector(weights_dir, name).golden_outputs(arrays)


class KerasDetectorProxy(ScoringBase):
    def __init__(self, *, weights_dir: Path, name: str) -> None:
        directory = Path(weights_dir) / name
        if not (directory / KERAS_MODEL_FILE).is_file() or not (directory / CARD_FILE).is_file():
            raise NoTrainedWeights(f"no trained weights for {name}")
        self.card: ModelCard = card_load(directory=directory)
        self.name: str = self.card.name
        self.version: str = str(self.card.version)
        self.image_size: int = int(self.card.image_size)
        self._where = (str(weights_dir), name)
        self._pool: ProcessPoolExecutor | None = None

    def _call(self, function, *args):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            atexit.register(self.close)  # before interpreter teardown, which would leave the child to a broken GC
        try:
            return self._pool.submit(function, *self._where, *args).result()
        except BrokenProcessPool:
            self._pool = None  # the child died (killed, out of memory): the next call starts a fresh one
            raise

    def predict_arrays(self, arrays: Sequence[np.ndarray]) -> list[float]:
        return self._call(_child_predict, [np.asarray(array) for array in arrays])

    def golden_outputs(self, arrays: Sequence[np.ndarray]) -> dict[str, list]:
        return self._call(_child_golden_outputs, [np.asarray(array) for array in arrays])

    def heatmap_array(self, array: np.ndarray, *, layer: str | None = None) -> np.ndarray:
        return self._call(_child_heatmap, np.asarray(array), layer)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
