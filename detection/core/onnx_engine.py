"""ONNX export of a bundle and an onnxruntime scoring path with the same preprocessing as `Detector`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from detection.core.bundle import bundle_load
from detection.core.card import ModelCard
from detection.core.inference import BATCH_SIZE, NoTrainedWeights
from detection.core.onnx_session import cpu_session
from detection.core.preprocess import arrays_to_tensor, image_canonical
from detection.core.verdicts import verdict_for

ONNX_FILE = "model.onnx"
OPSET = 17


class _Probabilities(nn.Module):
    """Wrap the net so the exported graph ends in the AI probability, like `Detector.predict`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)[:, 1]


def onnx_export(*, directory: Path, path: Path | None = None) -> Path:
    """Export the bundle in `directory` to ONNX (dynamic batch); returns the file written."""
    directory = Path(directory)
    model, card = bundle_load(directory=directory)
    path = Path(path) if path else directory / ONNX_FILE
    size = int(card.image_size)
    # The TorchScript exporter (deprecated, hence the silenced warning): the dynamo one needs onnxscript,
    # which is not a dependency.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _Probabilities(model).eval(),
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["image"],
            output_names=["ai_probability"],
            dynamic_axes={"image": {0: "batch"}, "ai_probability": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


class OnnxDetector:
    """onnxruntime counterpart of `Detector.predict`/`verdict` for an exported bundle."""

    def __init__(self, *, path: Path, card: ModelCard, threads: int | None = None) -> None:
        self.session = cpu_session(path, threads=threads)
        self.card = card
        self.name: str = card.name
        self.version: str = str(card.version)
        self.image_size = int(card.image_size)

    def predict_arrays(self, arrays: Sequence[np.ndarray]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(arrays), BATCH_SIZE):
            batch = arrays_to_tensor(arrays[start : start + BATCH_SIZE]).numpy()
            out.extend(self.session.run(None, {"image": batch})[0].astype(float).tolist())
        return out

    def predict(self, images: Sequence[Image.Image]) -> list[float]:
        return self.predict_arrays([np.asarray(image_canonical(img, size=self.image_size)) for img in images])

    def verdict(self, probability: float) -> str:
        thresholds = self.card.thresholds
        return verdict_for(probability, low=thresholds.low, high=thresholds.high)


def onnx_detector_load(*, weights_dir: Path, name: str, threads: int | None = None) -> OnnxDetector:
    """The exported model of bundle `name` (export it first with `onnx_export`)."""
    from detection.core.bundle import card_load

    directory = Path(weights_dir) / name
    if not (directory / ONNX_FILE).is_file():
        raise NoTrainedWeights(f"no trained weights for {name}")
    return OnnxDetector(path=directory / ONNX_FILE, card=card_load(directory=directory), threads=threads)
