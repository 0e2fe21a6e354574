"""Scenery suggestion: multinomial logistic regression on the CLIP image embedding the default detector
computes anyway, over the landscapes set's six sceneries (plus `other` when trained with other photos),
answering `other` when its top probability is below a threshold chosen on validation data.

The head is two small files in one folder: `head.safetensors` (fp16 weight and bias) and `head.json` (its
classes, threshold, the encoder it belongs to and its measured accuracy). Applying it needs numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

SCENERIES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
OTHER = "other"
HEAD_FILE = "head.safetensors"
HEAD_CARD = "head.json"


@dataclass(frozen=True)
class SceneryHead:
    classes: tuple[str, ...]
    weight: np.ndarray  # classes x embedding size
    bias: np.ndarray
    threshold: float

    def probabilities(self, embeds: np.ndarray) -> np.ndarray:
        logits = np.asarray(embeds, dtype=np.float32) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def suggest(self, embeds: np.ndarray) -> list[tuple[str, float]]:
        """(scenery, its probability) per embedding; `other` when the head is unsure or says so."""
        probs = self.probabilities(embeds)
        best = probs.argmax(axis=1)
        return [
            (self.classes[k] if probs[i, k] >= self.threshold else OTHER, float(probs[i, k]))
            for i, k in enumerate(best)
        ]


def labels_index(sceneries: Sequence[str], *, classes: Sequence[str]) -> np.ndarray:
    """Class index of each scenery name; names outside the six count as `other`."""
    return np.array([classes.index(name if name in SCENERIES else OTHER) for name in sceneries])


def threshold_choose(probs: np.ndarray, labels: np.ndarray, *, classes: Sequence[str]) -> float:
    """The top-probability floor with the best balanced accuracy on validation (mean recall over the classes
    present, `other` included, so the few other photos weigh as much as a scenery); the lowest such floor."""
    best, top = probs.argmax(axis=1), probs.max(axis=1)
    other = classes.index(OTHER) if OTHER in classes else -1
    present = np.unique(labels)
    best_score, best_threshold = -1.0, 0.0
    for threshold in np.concatenate([[0.0], np.unique(top)]):
        predicted = np.where(top >= threshold, best, other)
        score = float(np.mean([np.mean(predicted[labels == k] == k) for k in present]))
        if score > best_score:
            best_score, best_threshold = score, float(threshold)
    return best_threshold


def accuracy_per_scenery(head: SceneryHead, embeds: np.ndarray, sceneries: Sequence[str]) -> dict:
    """Share of each true scenery (names outside the six as `other`) that the head suggests, and overall."""
    suggested = np.array([name for name, _ in head.suggest(embeds)])
    truth = np.array([name if name in SCENERIES else OTHER for name in sceneries])
    per_scenery = {
        name: {
            "images": int((truth == name).sum()),
            "accuracy": round(float(np.mean(suggested[truth == name] == name)), 4),
        }
        for name in sorted(set(truth.tolist()))
    }
    return {"accuracy": round(float(np.mean(suggested == truth)), 4), "images": len(truth), "per_scenery": per_scenery}


def scenery_fit(
    *, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, classes: Sequence[str]
) -> tuple[SceneryHead, dict]:
    """Fit the head (class-balanced, L2 picked on validation loss), then its `other` floor on validation."""
    import torch

    from detection.core.clip_train import probe_fit

    linear, fit = probe_fit(train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, classes=len(classes))
    with torch.no_grad():
        weight, bias = linear.weight.numpy().astype(np.float32), linear.bias.numpy().astype(np.float32)
    head = SceneryHead(classes=tuple(classes), weight=weight, bias=bias, threshold=0.0)
    threshold = threshold_choose(head.probabilities(val_x), val_y, classes=classes)
    return SceneryHead(classes=tuple(classes), weight=weight, bias=bias, threshold=threshold), fit


def head_save(*, directory: Path, head: SceneryHead, card: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {"weight": head.weight.astype(np.float16), "bias": head.bias.astype(np.float16)}, str(directory / HEAD_FILE)
    )
    (directory / HEAD_FILE).chmod(0o644)
    payload = {**card, "classes": list(head.classes), "threshold": head.threshold}
    (directory / HEAD_CARD).write_text(json.dumps(payload, indent=1) + "\n")


def head_load(*, directory: Path) -> tuple[SceneryHead, dict]:
    """The head and its card; FileNotFoundError when the folder holds none."""
    card = json.loads((Path(directory) / HEAD_CARD).read_text())
    arrays = load_file(str(Path(directory) / HEAD_FILE))
    head = SceneryHead(
        classes=tuple(card["classes"]),
        weight=arrays["weight"].astype(np.float32),
        bias=arrays["bias"].astype(np.float32),
        threshold=float(card["threshold"]),
    )
    return head, card
