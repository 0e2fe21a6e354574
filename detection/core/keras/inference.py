"""Keras bundles on disk (`model.keras`, fp16 where the layers allow, + `card.json`) and their detector:
AI probabilities and tf.GradientTape Grad-CAM, rendered like the PyTorch heatmaps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from detection.core.card import ModelCard
from detection.core.files import CARD_FILE, KERAS_MODEL_FILE, NoTrainedWeights, card_load, card_save
from detection.core.preprocess import arrays_scale
from detection.core.scoring import BATCH_SIZE, ScoringBase, cam_normalise


def _recast(model: keras.Model, dtype: str) -> keras.Model:
    """The same model with every layer's weights and arithmetic in `dtype`."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = dtype
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights([np.asarray(w).astype(dtype) for w in model.get_weights()])
    return copy


def keras_model_read(path: Path) -> keras.Model:
    """Load a .keras file without compiling it (no custom objects, no code from the file: safe_mode);
    a model stored in fp16 computes in fp32, the CPU's precision. ValueError when it cannot be read."""
    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for a damaged or foreign file
        raise ValueError(f"{Path(path).name} is not a readable Keras model: {exc.__class__.__name__}: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise ValueError(f"{Path(path).name} holds a {type(model).__name__}, not a Keras model")
    if any(w.dtype == "float16" for w in model.weights):
        model = _recast(model, "float32")
    return model


def keras_bundle_save(*, directory: Path, model: keras.Model, card: ModelCard, half: bool = True) -> None:
    """Write `model.keras` (weights in fp16 when `half`: half the size, probabilities unchanged to ~1e-3)
    and the card."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Rebuilt from its config, the model leaves its optimizer state behind: serving needs none of it.
    served = model.__class__.from_config(model.get_config())
    served.set_weights(model.get_weights())
    (_recast(served, "float16") if half else served).save(str(directory / KERAS_MODEL_FILE))
    (directory / KERAS_MODEL_FILE).chmod(0o644)
    card_save(directory=directory, card=card)


def _logits_model(model: keras.Model) -> keras.Model:
    """The model up to its final activation: Grad-CAM follows the logit, which does not saturate as a
    sigmoid or softmax probability of 1.0 does (its gradient would vanish)."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation):
        return keras.Model(model.inputs, last.input)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.layers[-1].activation = keras.activations.linear
    return copy


class KerasDetector(ScoringBase):
    def __init__(self, *, model: keras.Model, card: ModelCard) -> None:
        self.name: str = card.name
        self.version: str = str(card.version)
        self.card: ModelCard = card
        self.image_size: int = int(card.image_size)
        self.model = model
        spec = card.keras
        self.scale: str = spec["input_scale"]
        self.ai_index: int = int(spec["ai_index"])
        self._logits: keras.Model | None = None
        self._grad_models: dict[str, keras.Model] = {}

    def inputs(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        return arrays_scale(arrays, scale=self.scale)

    def predict_arrays(self, arrays: Sequence[np.ndarray]) -> list[float]:
        probabilities: list[float] = []
        for start in range(0, len(arrays), BATCH_SIZE):
            out = np.asarray(self.model(self.inputs(arrays[start : start + BATCH_SIZE]), training=False))
            probabilities.extend(out[:, self.ai_index].astype(np.float64).tolist())
        return probabilities

    def _logits_get(self) -> keras.Model:
        if self._logits is None:
            self._logits = _logits_model(self.model)
        return self._logits

    def golden_outputs(self, arrays: Sequence[np.ndarray]) -> dict[str, list]:
        inputs = self.inputs(arrays)
        logits = np.asarray(self._logits_get()(inputs, training=False), dtype=np.float64)
        probabilities = np.asarray(self.model(inputs, training=False), dtype=np.float64)[:, self.ai_index]
        return {"logits": logits.tolist(), "probabilities": probabilities.tolist()}

    def _grad_model(self, layer: str) -> keras.Model:
        if layer not in self._grad_models:
            known = self.card.gradcam_layers
            if layer not in known:
                raise ValueError(f"unknown Grad-CAM layer {layer!r}; choose one of {', '.join(known)}")
            logits = self._logits_get()
            self._grad_models[layer] = keras.Model(logits.inputs, [logits.get_layer(layer).output, logits.output])
        return self._grad_models[layer]

    def heatmap_array(self, array: np.ndarray, *, layer: str | None = None) -> np.ndarray:
        """Grad-CAM of the AI logit at `layer` (the card's default when None): channel weights are the
        spatially averaged gradients, the map is their weighted sum of activations, ReLU, bilinear to the
        input size, normalised by its 99th percentile."""
        grad_model = self._grad_model(layer or self.card.gradcam_default_layer)
        batch = tf.convert_to_tensor(self.inputs([array]))
        with tf.GradientTape() as tape:
            activations, logits = grad_model(batch, training=False)
            target = logits[:, self.ai_index]
        grads = tape.gradient(target, activations)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))
        size = array.shape[:2]
        cam = tf.image.resize(cam, size, method="bilinear")[0, ..., 0]
        return cam_normalise(cam.numpy())


def keras_detector_load(*, weights_dir: Path, name: str) -> KerasDetector:
    directory = Path(weights_dir) / name
    if not (directory / KERAS_MODEL_FILE).is_file() or not (directory / CARD_FILE).is_file():
        raise NoTrainedWeights(f"no trained weights for {name}")
    return KerasDetector(model=keras_model_read(directory / KERAS_MODEL_FILE), card=card_load(directory=directory))
