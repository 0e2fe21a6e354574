"""`clip_blocks`: a logistic probe on several CLIP blocks' tokens, over a global view and crops.

Features come from `features.BlockEncoder` on the views of `views.views_make`; each view is a training
row with its image's label, and an image's score is the mean (or max) of its views' logits. Rows are
weighted so each class weighs the same and, within a class, each source (collection or generator family)
weighs the same: the probe must not learn the look of whichever collection is largest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from detection.core.features import feature_slices

ARCH = "clip_blocks"


@dataclass(frozen=True)
class ProbeConfig:
    blocks: tuple[int, ...] = tuple(range(12))
    cls: bool = True
    patches: bool = True
    embed: bool = False
    views: str = "all"  # "global", "crops" or "all", at every scale
    scales: tuple[int, ...] = ()  # smaller short sides whose views join the working image's (views_pyramid)
    aggregate: str = "mean"  # of the views' logits: "mean" or "max"
    balance: str = "source"  # "class", "source" (each source equal within its class) or "worst" (see below)
    weight_decay: float = 1e-3
    # With balance "worst", each class's loss is a soft maximum of its sources' mean losses at this temperature:
    # large, it is the "source" mean; small, the worst source alone (group DRO).
    temperature: float = 0.1
    # Width of a hidden layer (ReLU) before the logit; 0: the linear probe. A hidden layer trains by Adam on
    # mini-batches (`HIDDEN_STEPS`), `weight_decay` as the L2 penalty on both layers' weights.
    hidden: int = 0

    def __post_init__(self) -> None:
        if self.hidden and self.balance == "worst":
            raise ValueError("a probe with a hidden layer trains on weighted mini-batches: balance 'class' or 'source'")

    def columns(self) -> np.ndarray:
        return feature_slices(blocks=self.blocks, cls=self.cls, patches=self.patches, embed=self.embed)

    def view_indices(self, count: int) -> list[int]:
        """Of `count` views laid out scale by scale, each scale's global view first."""
        per_scale = count // (1 + len(self.scales))
        keep = {
            "global": lambda i: i % per_scale == 0,
            "crops": lambda i: i % per_scale != 0,
            "all": lambda i: True,
        }[self.views]
        return [index for index in range(count) if keep(index)]

    def to_dict(self) -> dict:
        return {**asdict(self), "blocks": list(self.blocks), "scales": list(self.scales)}


@dataclass
class ProbeHead:
    """Standardisation, a hidden layer where the config has one, and a linear layer over the chosen columns:
    1 logit (AI) per view."""

    config: ProbeConfig
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: float
    hidden_weight: np.ndarray | None = None  # hidden x columns
    hidden_bias: np.ndarray | None = None

    def view_logits(self, features: np.ndarray) -> np.ndarray:
        """features: N x V x FEATURE_DIM -> N x V logits (the chosen columns only)."""
        x = (features[..., self.config.columns()].astype(np.float32) - self.mean) / self.std
        if self.hidden_weight is not None:
            x = np.maximum(x @ self.hidden_weight.T + self.hidden_bias, 0.0)
        return x @ self.weight + self.bias

    def scores(self, features: np.ndarray) -> np.ndarray:
        logits = self.view_logits(features[:, self.config.view_indices(features.shape[1])])
        pooled = logits.max(axis=1) if self.config.aggregate == "max" else logits.mean(axis=1)
        return 1.0 / (1.0 + np.exp(-pooled))


def row_weights(labels: np.ndarray, sources: Sequence[str], *, balance: str) -> np.ndarray:
    """Per-image weights summing to 1 per class; with "source", shared equally by the class's sources."""
    weights = np.zeros(len(labels), dtype=np.float64)
    sources = np.asarray(sources)
    for label in (0, 1):
        in_class = labels == label
        if balance == "source":
            names = sorted(set(sources[in_class].tolist()))
            for name in names:
                members = in_class & (sources == name)
                weights[members] = 1.0 / (len(names) * members.sum())
        else:
            weights[in_class] = 1.0 / max(in_class.sum(), 1)
    return weights


def _rows_weighted(labels: np.ndarray, sources: Sequence[str], *, balance: str, views: int) -> torch.Tensor:
    """`row_weights` spread over each image's `views` rows, summing to 1."""
    weights = torch.from_numpy(np.repeat(row_weights(labels, sources, balance=balance) / views, views))
    return (weights / weights.sum()).float()


def _data_loss(
    labels: np.ndarray, sources: Sequence[str], *, config: ProbeConfig, views: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The rows' losses (each image's `views` rows in turn) -> the loss the probe minimises."""
    if config.balance != "worst":
        weights = _rows_weighted(labels, sources, balance=config.balance, views=views)
        return lambda losses: (losses * weights).sum()
    keys = [f"{label}:{source}" for label, source in zip(labels.tolist(), sources, strict=True)]
    names, of_row = np.unique(keys, return_inverse=True)
    group = torch.from_numpy(np.repeat(of_row, views))
    counts = torch.bincount(group, minlength=len(names)).float()
    masks = (torch.from_numpy(np.char.startswith(names, f"{label}:")) for label in (0, 1))
    classes = [(mask, float(np.log(int(mask.sum())))) for mask in masks if mask.any()]

    def soft_worst(losses: torch.Tensor) -> torch.Tensor:
        scaled = torch.zeros(len(names)).index_add(0, group, losses) / counts / config.temperature
        return sum(
            config.temperature * (torch.logsumexp(scaled[mask], 0) - log_count) for mask, log_count in classes
        ) / len(classes)

    return soft_worst


def probe_train(
    features: np.ndarray,
    labels: np.ndarray,
    sources: Sequence[str],
    *,
    config: ProbeConfig,
    steps: int = 200,
) -> ProbeHead:
    """L2-regularised logistic regression (LBFGS) over every chosen view of every image, its loss weighted or
    combined per source as `config.balance` says; with `config.hidden`, the same loss through a hidden layer."""
    views = config.view_indices(features.shape[1])
    x = features[:, views][..., config.columns()].astype(np.float32).reshape(-1, len(config.columns()))
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-4
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(np.repeat(labels, len(views)).astype(np.float32))
    if config.hidden:
        weights = _rows_weighted(labels, sources, balance=config.balance, views=len(views))
        return _hidden_train(xt, yt, weights, config=config, mean=mean, std=std)
    data_loss = _data_loss(labels, sources, config=config, views=len(views))
    layer = nn.Linear(xt.shape[1], 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        losses = nn.functional.binary_cross_entropy_with_logits(layer(xt)[:, 0], yt, reduction="none")
        loss = data_loss(losses) + config.weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return _head_of(config, mean, std, last=layer)


def _head_of(
    config: ProbeConfig, mean: np.ndarray, std: np.ndarray, *, last: nn.Linear, first: nn.Linear | None = None
) -> ProbeHead:
    """The trained layers as numpy arrays: `last` gives the logit, `first` (if any) the hidden layer."""
    hidden = {} if first is None else {"hidden_weight": first.weight, "hidden_bias": first.bias}
    return ProbeHead(
        config=config,
        mean=mean,
        std=std,
        weight=last.weight.detach().numpy()[0].copy(),
        bias=float(last.bias.detach()[0]),
        **{name: tensor.detach().numpy().copy() for name, tensor in hidden.items()},
    )


HIDDEN_STEPS = 600
HIDDEN_BATCH = 256
HIDDEN_LR = 1e-3


def _hidden_train(
    xt: torch.Tensor, yt: torch.Tensor, weights: torch.Tensor, *, config: ProbeConfig, mean: np.ndarray, std: np.ndarray
) -> ProbeHead:
    """Adam on seeded mini-batches of rows, each batch's weighted loss scaled up to the whole set's, so that
    `weight_decay` weighs against the data as it does in the linear probe."""
    generator = torch.Generator().manual_seed(0)
    first, last = nn.Linear(xt.shape[1], config.hidden), nn.Linear(config.hidden, 1)
    with torch.no_grad():
        first.weight.normal_(0.0, xt.shape[1] ** -0.5, generator=generator)
        for tensor in (first.bias, last.weight, last.bias):
            tensor.zero_()
    net = nn.Sequential(first, nn.ReLU(), last)
    optimiser = torch.optim.Adam(net.parameters(), lr=HIDDEN_LR)
    batches: list[torch.Tensor] = []
    for _ in range(HIDDEN_STEPS):
        if not batches:
            batches = list(torch.randperm(len(xt), generator=generator).split(HIDDEN_BATCH))
        batch = batches.pop()
        losses = nn.functional.binary_cross_entropy_with_logits(net(xt[batch])[:, 0], yt[batch], reduction="none")
        penalty = first.weight.pow(2).sum() + last.weight.pow(2).sum()
        loss = (losses * weights[batch]).sum() * (len(xt) / len(batch)) + config.weight_decay * penalty
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return _head_of(config, mean, std, last=last, first=first)
