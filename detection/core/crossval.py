"""Leave-source-out cross-validation: what a detector gets on a collection or a generator it never saw.

Every image belongs to one *unit*: the real collection it comes from, or the generator family that made
it. Units are dealt to K folds; fold k's images are scored by a model that never saw fold k's units, nor
any image sharing a group with them (near-duplicates, prompt variants, a photo and its autoencoder round
trip), and whose thresholds come from its own training folds only: nested, an inner leave-fold-out over
the training folds gives out-of-source scores to calibrate on. So every figure is out of source.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from detection.core.data import Sample
from detection.core.metrics import (
    flag_counts_by,
    logits_standardised,
    recall_at_false_flag,
    roc_auc,
    thresholds_calibrate,
)

# Generator names in groups.csv vary by host and variant ("FLUX.1-dev (via fal API)", "Qwen-Image-2512"):
# a family holds out every variant together, so a fold never tests a generator its training saw.
_FAMILY_ALIASES = {
    "sdxl": "stable-diffusion",
    "sdxl-turbo": "stable-diffusion",
    "stable": "stable-diffusion",
    "instaflow": "stable-diffusion",
    "perflow": "stable-diffusion",
    "sd": "stable-diffusion",
    "latent": "stable-diffusion",
    "glid": "stable-diffusion",
    "chatgpt": "openai",
    "dall": "openai",
    "gpt": "openai",
    "gemini": "google",
    "nano": "google",
    "imagen": "google",
    "midjourney": "midjourney",
    "flux": "flux",
    "krea": "flux",
    "qwen": "qwen",
}

Scorer = Callable[[np.ndarray], np.ndarray]
Fit = Callable[[np.ndarray], Scorer]


def generator_family(generator: str) -> str:
    word = re.split(r"[\s(.\-_/,]+", generator.strip().lower())[0] or "unknown"
    return _FAMILY_ALIASES.get(word, word)


def unit_of(sample: Sample) -> str:
    """The unit an image is held out with: `real:<collection>`, `ai:<generator family>` or, for an AI image
    whose folder names no generator, `ai:<source>`."""
    if sample.label == 0:
        return f"real:{sample.source}"
    if sample.generator and sample.generator != "unknown" and sample.roundtrip_decoder is None:
        return f"ai:{generator_family(sample.generator)}"
    return f"ai:{sample.source}"


def folds_assign(units: Sequence[str], labels: Sequence[int], *, k: int, seed: int = 0) -> dict[str, int]:
    """Unit -> fold: largest units first, each to the fold holding fewest images of its class."""
    sizes: dict[str, int] = defaultdict(int)
    label_of: dict[str, int] = {}
    for unit, label in zip(units, labels, strict=True):
        sizes[unit] += 1
        label_of[unit] = int(label)
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda unit: -sizes[unit])
    filled = np.zeros((2, k), dtype=int)
    folds: dict[str, int] = {}
    for unit in order:
        fold = int(np.argmin(filled[label_of[unit]]))
        folds[unit] = fold
        filled[label_of[unit], fold] += sizes[unit]
    return folds


@dataclass
class Protocol:
    """Samples with their unit and fold; `train_for` and `test_for` enforce the hold-out."""

    samples: Sequence[Sample]
    k: int
    seed: int = 0
    # Images that only ever train (content-aligned fakes and their photos' copies): held out with their
    # units like any other, never counted in the report, whose figures are about real generators.
    train_only: Sequence[bool] | None = None
    units: list[str] = field(init=False)
    fold_of_unit: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if self.k < 3:
            raise ValueError("leave-source-out needs at least 3 folds: thresholds come from an inner split")
        self.units = [unit_of(sample) for sample in self.samples]
        self.fold_of_unit = folds_assign(self.units, [s.label for s in self.samples], k=self.k, seed=self.seed)
        self.folds = np.array([self.fold_of_unit[unit] for unit in self.units])
        self.labels = np.array([sample.label for sample in self.samples])
        self.groups = np.array([sample.group for sample in self.samples])
        self.counted = (
            ~np.asarray(self.train_only, dtype=bool)
            if self.train_only is not None
            else (np.ones(len(self.samples), dtype=bool))
        )

    def held_groups(self, folds: Sequence[int]) -> set[str]:
        return set(self.groups[np.isin(self.folds, list(folds))].tolist())

    def train_for(self, held_folds: Sequence[int]) -> np.ndarray:
        """Indices a model may train on while `held_folds` are held out: no image of a held unit, nor any
        image sharing a group with one."""
        held = self.held_groups(held_folds)
        return np.array([i for i, group in enumerate(self.groups) if group not in held], dtype=int)

    def test_for(self, fold: int, *, outside: Sequence[int] = ()) -> np.ndarray:
        held = self.held_groups(outside) if outside else set()
        return np.array([i for i in np.flatnonzero(self.folds == fold) if self.groups[i] not in held], dtype=int)

    def counted_test_for(self, fold: int, *, outside: Sequence[int] = ()) -> np.ndarray:
        """`test_for` without the training-only images: the ones a model's scores are needed for."""
        test = self.test_for(fold, outside=outside)
        return test[self.counted[test]]


def _both_classes(protocol: Protocol, train: np.ndarray) -> None:
    if len(set(protocol.labels[train].tolist())) < 2:
        raise ValueError("a fold's training part lacks a class: give more sources or fewer folds")


def thresholds_out_of_source(protocol: Protocol, indices: np.ndarray, scores: np.ndarray, **calibration) -> dict:
    """Thresholds from out-of-source scores: per real collection (unit) as well as over all reals."""
    reals = [position for position, i in enumerate(indices) if protocol.labels[i] == 0]
    return thresholds_calibrate(scores[reals], real_sources=[protocol.units[indices[p]] for p in reals], **calibration)


def crossval_run(protocol: Protocol, *, fit: Fit, **calibration) -> dict:
    """Out-of-source score and thresholds for every image: the outer model of its fold scores it, the
    thresholds come from that fold's inner out-of-source scores. Returns arrays aligned with samples; a
    training-only image is never scored (NaN), as no figure counts it."""
    scores = np.full(len(protocol.samples), np.nan)
    highs, lows = np.full(len(scores), np.nan), np.full(len(scores), np.nan)
    for fold in range(protocol.k):
        inner_indices, inner_scores = [], []
        for inner in range(protocol.k):
            if inner == fold:
                continue
            test = protocol.counted_test_for(inner, outside=[fold])
            if len(test):
                _both_classes(protocol, protocol.train_for([fold, inner]))
                inner_indices.append(test)
                inner_scores.append(fit(protocol.train_for([fold, inner]))(test))
        thresholds = thresholds_out_of_source(
            protocol, np.concatenate(inner_indices), np.concatenate(inner_scores), **calibration
        )
        test = protocol.counted_test_for(fold)
        scores[test] = fit(protocol.train_for([fold]))(test)
        highs[test], lows[test] = thresholds["high"], thresholds["low"]
    return {"scores": scores, "high": highs, "low": lows}


def _rates(*, keys: np.ndarray, hits: np.ndarray, among: np.ndarray) -> dict[str, dict]:
    """Per key (a unit, a generator) of the images `among` selects: their number and the share of `hits`,
    as the report and the cards quote them (`n`, `rate`)."""
    counts = flag_counts_by(keys=keys[among].tolist(), flagged=hits[among].tolist())
    return {key: {"n": value["images"], "rate": float(value["rate"])} for key, value in counts.items()}


def _summary(rates: dict[str, dict], *, minimum: int) -> dict:
    counted = [value["rate"] for value in rates.values() if value["n"] >= minimum]
    return {"mean": float(np.mean(counted)) if counted else None, "units": len(counted), "minimum_n": minimum}


def crossval_report(protocol: Protocol, result: dict, *, minimum: int = 10) -> dict:
    """False flags and human-review share per held-out real collection, recall per held-out generator
    family and per generator name, with mean and worst over units of at least `minimum` images."""
    counted = protocol.counted
    scores, labels = result["scores"][counted], protocol.labels[counted]
    flagged = scores >= result["high"][counted]
    uncertain = ~flagged & (scores >= result["low"][counted])
    units = np.array(protocol.units)[counted]
    # A unit holds real images only or AI images only (unit_of), so selecting by label selects by unit.
    reals, ais = labels == 0, labels == 1
    generators = np.array([s.generator or s.source for s, kept in zip(protocol.samples, counted, strict=True) if kept])
    false_flags = _rates(keys=units, hits=flagged, among=reals)
    recall = _rates(keys=units, hits=flagged, among=ais)
    to_human = _rates(keys=units, hits=uncertain, among=reals)
    counted_ff = [v["rate"] for v in false_flags.values() if v["n"] >= minimum]
    counted_recall = [v["rate"] for v in recall.values() if v["n"] >= minimum]
    return {
        "k": protocol.k,
        "folds": {unit: fold for unit, fold in sorted(protocol.fold_of_unit.items())},
        "false_flags": false_flags,
        "to_human": to_human,
        "recall": recall,
        "recall_by_generator": _rates(keys=generators, hits=flagged, among=ais),
        "false_flags_mean": _summary(false_flags, minimum=minimum)["mean"],
        "false_flags_worst": max(counted_ff) if counted_ff else None,
        "recall_mean": _summary(recall, minimum=minimum)["mean"],
        "recall_worst": min(counted_recall) if counted_recall else None,
        "false_flags_all": float(flagged[reals].mean()),
        "to_human_all": float(uncertain[reals].mean()),
        "recall_all": float(flagged[ais].mean()),
        **_ranking(labels, scores),
        "minimum_n": minimum,
    }


def _ranking(labels: np.ndarray, scores: np.ndarray) -> dict:
    return {
        "roc_auc": roc_auc(labels=labels, scores=scores),
        "recall_at_false_flags": {
            str(rate): recall_at_false_flag(labels=labels, scores=scores, rate=rate) for rate in (0.01, 0.03)
        },
    }


def outer_scores(protocol: Protocol, *, fit: Fit) -> np.ndarray:
    """Each image's out-of-source score from its fold's model alone. No inner folds, so no thresholds: for a
    detector that costs too much to train k * (k - 1) more times (a CNN), compared by `ranking_report`."""
    scores = np.full(len(protocol.samples), np.nan)
    for fold in range(protocol.k):
        train = protocol.train_for([fold])
        _both_classes(protocol, train)
        test = protocol.counted_test_for(fold)
        scores[test] = fit(train)(test)
    return scores


def ranking_report(protocol: Protocol, scores: np.ndarray) -> dict:
    """The threshold-free figures of the counted images' out-of-source scores (ROC AUC, AI caught when 1 % and
    3 % of genuine photos are flagged), pooled and per held-out fold."""
    counted = protocol.counted
    return {
        **_ranking(protocol.labels[counted], scores[counted]),
        "folds": {
            fold: _ranking(protocol.labels[among], scores[among])
            for fold in range(protocol.k)
            if (among := counted & (protocol.folds == fold)).any()
        },
    }


def fusion_stacked(
    protocol: Protocol, first: np.ndarray, second: np.ndarray, *, rate: float = 0.03, steps: int = 21
) -> tuple[np.ndarray, dict[int, float]]:
    """Two detectors' out-of-source scores fused with a weight stacked per fold: fold f's images score
    (1 - w) * first + w * second (standardised logits), w the weight that catches most AI at `rate` false
    flags on the other folds' counted images, never on fold f's own labels; of equal weights, the one
    nearest an even mix. Returns the fused scores (NaN where either is) and each fold's weight."""
    first, second = logits_standardised(first), logits_standardised(second)
    candidates = sorted(np.linspace(0.0, 1.0, steps), key=lambda w: abs(w - 0.5))
    scored = protocol.counted & ~np.isnan(first) & ~np.isnan(second)

    def mixed(weight: float, among: np.ndarray) -> np.ndarray:
        return (1 - weight) * first[among] + weight * second[among]

    def caught(weight: float, *, among: np.ndarray) -> float:
        return recall_at_false_flag(labels=protocol.labels[among], scores=mixed(weight, among), rate=rate) or 0.0

    fused, weights = np.full(len(first), np.nan), {}
    for fold in range(protocol.k):
        held = protocol.folds == fold
        weights[fold] = float(max(candidates, key=partial(caught, among=scored & ~held)))
        fused[held & scored] = mixed(weights[fold], held & scored)
    return fused, weights


def samples_limit(samples: Sequence[Sample], *, per_unit: int | None, seed: int = 0) -> list[Sample]:
    """At most about `per_unit` images of each unit, whole groups taken in a seeded order: the seed set's
    thousands of look-alike photos would otherwise dominate the protocol's cost and its training."""
    if not per_unit:
        return list(samples)
    by_unit: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for sample in samples:
        by_unit[unit_of(sample)][sample.group].append(sample)
    kept: list[Sample] = []
    rng = random.Random(seed)
    for unit in sorted(by_unit):
        groups = sorted(by_unit[unit])
        rng.shuffle(groups)
        taken = 0
        for group in groups:
            if taken >= per_unit:
                break
            kept.extend(by_unit[unit][group])
            taken += len(by_unit[unit][group])
    return kept
