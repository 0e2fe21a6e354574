"""Training the CLIP probe: class-balanced logistic regression on the frozen encoder's cached embeddings,
calibrated on the validation split and saved as a bundle beside a copy of the encoder."""

from __future__ import annotations

import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detection.core.bundle import bundle_save
from detection.core.caches import arrays_cache, embeddings_arrays, embeddings_cache
from detection.core.card import ModelCard
from detection.core.clip_probe import (
    ARCH,
    CLIP_SIZE,
    ENCODER_FILE,
    ENCODER_ORIGIN,
    ENCODER_SHA256,
    ClipProbe,
)
from detection.core.encoder_graph import DERIVATION
from detection.core.files import heldout_scores_save
from detection.core.metrics import figures_at, thresholds_for_samples
from detection.core.preprocess import PREPROCESSING_DESCRIPTION
from detection.core.transforms import image_augment


def probe_fit(
    *,
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
    steps: int = 300,
    seed: int = 0,
    classes: int = 2,
) -> tuple[nn.Linear, dict]:
    """Class-balanced (multinomial) logistic regression on embeddings; the L2 strength is the one with the
    lowest validation loss."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).long()
    xv, yv = torch.from_numpy(val_x).float(), torch.from_numpy(val_y).long()
    counts = torch.bincount(yt, minlength=classes).float()
    weights = len(yt) / (classes * counts)
    best: tuple[float, nn.Linear | None, float] = (float("inf"), None, 0.0)
    for decay in weight_decays:
        head = nn.Linear(xt.shape[1], classes)
        optimiser = torch.optim.LBFGS(head.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure(head=head, optimiser=optimiser, decay=decay):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(head(xt * 10), yt, weight=weights) + decay * head.weight.pow(2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            val_loss = float(nn.functional.cross_entropy(head(xv * 10), yv, weight=weights))
        if val_loss < best[0]:
            best = (val_loss, head, decay)
    head = best[1]
    # Fold the x10 input scale (it conditions LBFGS) into the weights, so the head takes raw embeddings.
    with torch.no_grad():
        head.weight.mul_(10)
    return head, {"val_loss": best[0], "weight_decay": best[2]}


def _train_embeddings(
    encoder, train, *, image_size: int, cache_dir: Path | None, augment_copies: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and labels of the training images, then of `augment_copies` re-shot copies of each."""
    train_x = embeddings_cache(encoder, train, image_size=image_size, cache_dir=cache_dir)
    train_y = np.array([s.label for s in train])
    if augment_copies:
        base = arrays_cache(train, size=image_size, kind="base", cache_dir=cache_dir)
        rng = random.Random(seed)
        for _ in range(augment_copies):
            augmented = np.stack([image_augment(array, size=image_size, rng=rng) for array in base])
            train_x = np.concatenate([train_x, embeddings_arrays(encoder, augmented, cache_dir=cache_dir)])
            train_y = np.concatenate([train_y, train_y[: len(train)]])
    return train_x, train_y


def _card_make(
    *,
    name: str,
    image_size: int,
    thresholds: dict,
    val_figures: dict,
    data_fingerprint: str | None,
    split_file: str | None,
    training: dict,
) -> ModelCard:
    """The probe's card: the encoder it needs and its provenance beside the usual fields."""
    return ModelCard.from_dict(
        {
            "name": name,
            "arch": ARCH,
            "version": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
            "image_size": image_size,
            "preprocessing": PREPROCESSING_DESCRIPTION + f"; then bicubic to {CLIP_SIZE} px and CLIP mean/std",
            "encoder_file": ENCODER_FILE,
            "encoder_sha256": ENCODER_SHA256,
            "encoder_origin": ENCODER_ORIGIN,
            "encoder_derivation": DERIVATION,
            "thresholds": thresholds,
            "metrics": {"val": val_figures},
            "data_fingerprint": data_fingerprint,
            "split_file": split_file,
            "training": training,
        }
    )


def clip_probe_train(
    *,
    encoder_path: Path,
    train,
    val,
    out_dir: Path,
    name: str = ARCH,
    image_size: int = 128,
    cache_dir: Path | None = None,
    split_file: str | None = None,
    data_fingerprint: str | None = None,
    false_flag: float = 0.02,
    threads: int | None = None,
    augment_copies: int = 0,
    seed: int = 0,
) -> ModelCard:
    """Fit the probe on train embeddings, calibrate on val, save `out_dir/name/` (head + card + encoder).
    `augment_copies` adds that many randomly re-shot copies of each training image (train.image_augment:
    rescale, JPEG 30-95, blur, noise, colour), so the probe does not key on one data set's look."""
    started = time.monotonic()
    model = ClipProbe(encoder_path=encoder_path, threads=threads)
    train_x, train_y = _train_embeddings(
        model.encoder, train, image_size=image_size, cache_dir=cache_dir, augment_copies=augment_copies, seed=seed
    )
    val_x = embeddings_cache(model.encoder, val, image_size=image_size, cache_dir=cache_dir)
    val_y = np.array([s.label for s in val])
    head, fit = probe_fit(train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y)
    model.head = head
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(val_x)), dim=1)[:, 1].numpy()
    thresholds = thresholds_for_samples(val, probs, false_flag=false_flag)
    card = _card_make(
        name=name,
        image_size=image_size,
        thresholds=thresholds,
        val_figures={**figures_at(labels=val_y, scores=probs, high=thresholds["high"]), **fit},
        data_fingerprint=data_fingerprint,
        split_file=split_file,
        training={
            "train_images": len(train),
            "val_images": len(val),
            "augment_copies": augment_copies,
            "seconds": round(time.monotonic() - started, 1),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    directory = Path(out_dir) / name
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / ENCODER_FILE).is_file():
        shutil.copyfile(encoder_path, directory / ENCODER_FILE)
    bundle_save(directory=directory, model=model, card=card)
    heldout_scores_save(directory=directory, samples=val, probs=probs, version=card.version)
    return card
