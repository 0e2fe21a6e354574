"""Bring a Keras detector from elsewhere into the portal: a `.keras` binary image classifier becomes a bundle
with its input size and scaling recorded, Grad-CAM layers chosen and thresholds calibrated on a split."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from detection.core.caches import arrays_cache
from detection.core.card import ModelCard
from detection.core.data import Sample
from detection.core.files import KERAS_ARCH, KERAS_MODEL_FILE, card_save, file_sha256, heldout_scores_save
from detection.core.keras.inference import KerasDetector, keras_model_read
from detection.core.keras.nets import SEED_GRADCAM_DEFAULT, SEED_GRADCAM_LAYERS
from detection.core.metrics import (
    confusion_counts,
    false_flag_rate,
    precision_recall_f1,
    roc_auc,
    thresholds_for_samples,
)
from detection.core.preprocess import INPUT_SCALES, preprocessing_description


class InvalidKerasModel(ValueError):
    """The file is not a Keras binary image classifier the portal can serve; the message says why."""


def _final_activation(model: keras.Model) -> str:
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") if activation is not None else ""


def keras_classifier_inspect(model: keras.Model) -> dict:
    """Input size (None when free) and output kind of a binary image classifier: one image input N x H x W x 3
    (square or free), one output ending in one sigmoid unit or two softmax units with probabilities that
    behave as such on a test batch. Raises InvalidKerasModel otherwise."""
    if len(model.inputs) != 1:
        raise InvalidKerasModel(f"the model takes {len(model.inputs)} inputs; a detector takes one image")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise InvalidKerasModel(f"input shape {shape} is not an image batch (N, height, width, 3)")
    height, width = shape[1], shape[2]
    if height != width:
        raise InvalidKerasModel(f"input {height}x{width} is not square; the canonical image is")
    if len(model.outputs) != 1:
        raise InvalidKerasModel(f"the model has {len(model.outputs)} outputs; a binary classifier has one")
    out_shape = tuple(model.outputs[0].shape)
    units = out_shape[-1] if len(out_shape) == 2 else None
    activation = _final_activation(model)
    if (units, activation) not in {(1, "sigmoid"), (2, "softmax")}:
        raise InvalidKerasModel(
            f"output {out_shape} through {activation or 'no activation'}: a binary classifier "
            "ends in one sigmoid unit or two softmax units"
        )
    size = height or 64
    probe = np.asarray(
        model(np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32), training=False)
    )
    if (
        not np.all(np.isfinite(probe))
        or probe.min() < 0
        or probe.max() > 1
        or (units == 2 and not np.allclose(probe.sum(axis=1), 1, atol=1e-3))
    ):
        raise InvalidKerasModel("its outputs on a test batch are not probabilities")
    return {"input_size": height, "output": activation, "units": units}


def gradcam_candidates(model: keras.Model) -> tuple[list[str], str]:
    """(Grad-CAM layers shallow to deep, the default): the seed's three where the model has them (the seed
    chose block_13_expand), else the last top-level layer of each of the last three spatial resolutions, the
    default being the middle one, as for the PyTorch nets (the deepest is often too coarse to point)."""
    names = {layer.name for layer in model.layers}
    if set(SEED_GRADCAM_LAYERS) <= names:
        return list(SEED_GRADCAM_LAYERS), SEED_GRADCAM_DEFAULT
    stage_ends: dict[tuple, str] = {}
    for layer in model.layers[1:]:
        shape = tuple(getattr(layer, "output", None).shape) if hasattr(layer, "output") else ()
        if len(shape) == 4 and (shape[1] is None or shape[1] > 1):
            stage_ends.pop(shape[1:3], None)
            stage_ends[shape[1:3]] = layer.name  # re-inserted: the dict ends with the deepest resolution
    layers = list(stage_ends.values())[-3:]
    if not layers:
        raise InvalidKerasModel("no layer keeps a spatial map (N, h, w, c) to compute Grad-CAM on")
    return layers, layers[1] if len(layers) == 3 else layers[-1]


def _model_read(source: Path) -> keras.Model:
    try:
        return keras_model_read(source)
    except ValueError as exc:
        raise InvalidKerasModel(str(exc)) from exc


def _size_index_check(spec: dict, *, image_size: int | None, ai_index: int | None) -> tuple[int, int]:
    """The input size and the AI class's output index, from the model where it fixes them, else from the
    arguments; ValueError where they do not fit the model."""
    size = spec["input_size"] or image_size
    if size is None:
        raise ValueError("the model takes any input size: give the size it was trained at (--image-size)")
    if image_size is not None and image_size != size:
        raise ValueError(f"the model takes {size} px inputs, not {image_size}")
    index = 0 if spec["units"] == 1 else (1 if ai_index is None else ai_index)
    if index not in range(spec["units"]):
        raise ValueError(f"AI class index {index} is not one of the model's {spec['units']} outputs")
    return size, index


def _payload_make(
    *,
    model: keras.Model,
    spec: dict,
    name: str,
    source: Path,
    sha256: str,
    size: int,
    index: int,
    input_scale: str,
    gradcam: tuple[list[str], str],
    split_file: str | None,
    data_fingerprint: str | None,
) -> dict:
    """The card before calibration: its thresholds and metrics are filled in once the model has scored the
    validation split."""
    layers, default = gradcam
    return {
        "name": name,
        "arch": KERAS_ARCH,
        "version": f"imported-{sha256[:12]}",
        "image_size": size,
        "network": f"imported Keras model {model.name!r}, {model.count_params()} parameters",
        "preprocessing": preprocessing_description(input_scale),
        "keras": {
            "input_scale": input_scale,
            "output": spec["output"],
            "ai_index": index,
            "input_size": size,
            "weights_dtype": str(model.weights[0].dtype) if model.weights else None,
        },
        "gradcam_layers": layers,
        "gradcam_default_layer": default,
        "thresholds": {"low": 0.5, "high": 0.5},
        "imported": {
            "source": Path(source).name,
            "sha256": sha256,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "split_file": split_file,
        "data_fingerprint": data_fingerprint,
    }


def _val_metrics(*, labels: np.ndarray, probs: np.ndarray, high: float) -> dict:
    counts = confusion_counts(labels=labels, flagged=probs >= high)
    return {
        **precision_recall_f1(counts),
        **counts,
        "false_flag_rate": false_flag_rate(counts),
        "roc_auc": roc_auc(labels=labels, scores=probs),
    }


def keras_model_import(
    *,
    source: Path,
    name: str,
    weights_dir: Path,
    val: Sequence[Sample],
    input_scale: str,
    image_size: int | None = None,
    ai_index: int | None = None,
    false_flag: float = 0.02,
    cache_dir: Path | None = None,
    split_file: str | None = None,
    data_fingerprint: str | None = None,
) -> ModelCard:
    """Validate `source`, copy it into `weights_dir/name/` and write a card with thresholds calibrated on `val`
    (the split's validation part). Raises InvalidKerasModel for a file that cannot be served, ValueError for
    arguments that do not fit it."""
    if input_scale not in INPUT_SCALES:
        raise ValueError(f"unknown input scale {input_scale!r}; choose one of {', '.join(INPUT_SCALES)}")
    model = _model_read(source)
    spec = keras_classifier_inspect(model)
    size, index = _size_index_check(spec, image_size=image_size, ai_index=ai_index)
    gradcam = gradcam_candidates(model)
    directory = Path(weights_dir) / name
    if (directory / KERAS_MODEL_FILE).exists():
        raise ValueError(f"a model named {name} exists already")
    payload = _payload_make(
        model=model,
        spec=spec,
        name=name,
        source=source,
        sha256=file_sha256(source),
        size=size,
        index=index,
        input_scale=input_scale,
        gradcam=gradcam,
        split_file=split_file,
        data_fingerprint=data_fingerprint,
    )
    detector = KerasDetector(model=model, card=ModelCard.from_dict(payload))
    labels = np.array([sample.label for sample in val])
    if len(set(labels.tolist())) < 2:
        raise ValueError("the validation split must hold both real and AI images")
    probs = np.asarray(detector.predict_arrays(arrays_cache(val, size=size, kind="canonical", cache_dir=cache_dir)))
    payload["thresholds"] = thresholds_for_samples(val, probs, false_flag=false_flag)
    payload["metrics"] = {"val": _val_metrics(labels=labels, probs=probs, high=payload["thresholds"]["high"])}
    payload["calibrated"] = datetime.now(UTC).isoformat(timespec="seconds")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, directory / KERAS_MODEL_FILE)
    (directory / KERAS_MODEL_FILE).chmod(0o644)
    card = ModelCard.from_dict(payload)
    card_save(directory=directory, card=card)
    heldout_scores_save(directory=directory, samples=val, probs=probs, version=card.version)
    return card
