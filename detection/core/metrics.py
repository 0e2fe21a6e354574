"""Small, dependency-free metrics (AI = positive class) and threshold calibration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def confusion_counts(*, labels: Sequence[int], flagged: Sequence[bool]) -> dict[str, int]:
    """tp/fp/tn/fn with label 1 (AI) as the positive class and `flagged` as the prediction."""
    y = np.asarray(labels, dtype=bool)
    p = np.asarray(flagged, dtype=bool)
    return {
        "tp": int(np.sum(y & p)),
        "fp": int(np.sum(~y & p)),
        "tn": int(np.sum(~y & ~p)),
        "fn": int(np.sum(y & ~p)),
    }


def precision_recall_f1(counts: dict[str, int]) -> dict[str, float | None]:
    """Precision, recall, F1 from counts; None where the denominator is zero (undefined, not 0)."""
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
    return {"precision": precision, "recall": recall, "f1": f1}


def false_flag_rate(counts: dict[str, int]) -> float | None:
    """Share of real images flagged as AI (the false-positive rate)."""
    real = counts["fp"] + counts["tn"]
    return counts["fp"] / real if real else None


def roc_auc(*, labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count half); None if one class."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_scores = s[order]
    # Average ranks over ties.
    start = 0
    while start < len(s):
        end = start
        while end + 1 < len(s) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    rank_sum = ranks[y].sum()
    return float((rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def figures_at(*, labels: Sequence[int], scores: Sequence[float], high: float) -> dict:
    """Counts, precision/recall/F1, false-flag rate and ROC AUC with `scores >= high` flagged: what cards and
    reports give for a split."""
    counts = confusion_counts(labels=labels, flagged=np.asarray(scores) >= high)
    return {
        **counts,
        **precision_recall_f1(counts),
        "false_flag_rate": false_flag_rate(counts),
        "roc_auc": roc_auc(labels=labels, scores=scores),
    }


def roc_curve(*, labels: Sequence[int], scores: Sequence[float]) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) over every distinct threshold, from (0,0) to (1,1)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    thresholds = np.unique(s)[::-1]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = [0.0] + [float(np.sum(~y & (s >= t)) / n_neg) for t in thresholds]
    tpr = [0.0] + [float(np.sum(y & (s >= t)) / n_pos) for t in thresholds]
    return fpr, tpr


def false_flags_allowed(n_real: int, *, rate: float, confidence: float) -> int:
    """How many of `n_real` validation reals a threshold may flag so that the false-flag rate on new reals
    stays at most `rate` with probability `confidence` (the Neyman-Pearson "umbrella" order statistic,
    Tong, Feng & Li 2018): the largest k with P(Binomial(n_real, rate) <= k) <= 1 - confidence. With
    confidence 0 it is the point estimate floor(rate * n_real). -1 means even flagging none is not enough
    evidence: the validation set is too small for that confidence."""
    if confidence <= 0:
        return int(np.floor(rate * n_real))
    log_rate, log_keep = math.log(rate), math.log1p(-rate)
    cdf, allowed = 0.0, -1
    for k in range(n_real + 1):
        log_pmf = (
            math.lgamma(n_real + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n_real - k + 1)
            + k * log_rate
            + (n_real - k) * log_keep
        )
        cdf += math.exp(log_pmf)
        if cdf > 1 - confidence:
            return allowed
        allowed = k
    return allowed


def threshold_for_false_flag(real_scores: Sequence[float], *, rate: float, confidence: float = 0.0) -> float:
    """Smallest threshold that flags at most `false_flags_allowed(...)` of the real scores."""
    scores = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    if len(scores) == 0:
        raise ValueError("cannot calibrate a threshold without real images")
    allowed = max(false_flags_allowed(len(scores), rate=rate, confidence=confidence), 0)
    if allowed >= len(scores):
        return 0.0
    # Just above the (allowed+1)-th highest real score, so that one and all below stay unflagged. The step
    # is taken in float32, the precision the models' probabilities come in, so comparisons hold there too.
    return float(min(np.nextafter(np.float32(scores[allowed]), np.float32(np.inf)), np.float32(1.0)))


def thresholds_calibrate(
    real_scores: Sequence[float],
    *,
    real_sources: Sequence[str] | None = None,
    false_flag: float = 0.02,
    confidence: float = 0.95,
    uncertain_false_flag: float = 0.10,
    collection_minimum: int = 1,
) -> dict:
    """`high` keeps the false-flag rate on new reals at most `false_flag` with probability `confidence`
    (a point estimate on validation overshoots about half the time), over all validation reals and over
    each source (collection) in `real_sources` with enough of them to back the bound on its own, and at
    least `collection_minimum`, so an average cannot hide a collection that is flagged more; `low` is where
    `uncertain_false_flag` of all validation reals would be flagged. p >= high is "ai", p < low "real",
    between is "uncertain"."""
    scores = np.asarray(real_scores, dtype=np.float64)
    populations = {"all": scores}
    if real_sources is not None:
        sources = np.asarray(real_sources)
        for source in sorted(set(sources.tolist())):
            own = scores[sources == source]
            backed = false_flags_allowed(len(own), rate=false_flag, confidence=confidence) >= 0
            if backed and collection_minimum <= len(own) < len(scores):
                populations[source] = own
    high = max(threshold_for_false_flag(own, rate=false_flag, confidence=confidence) for own in populations.values())
    allowed = false_flags_allowed(len(scores), rate=false_flag, confidence=confidence)
    low = threshold_for_false_flag(scores, rate=uncertain_false_flag)
    if low >= high:
        low = float(np.nextafter(np.float32(high), np.float32(-np.inf)))
    return {
        "low": low,
        "high": high,
        "false_flag_target": false_flag,
        "false_flag_confidence": confidence,
        # False when validation holds too few reals to back the bound even with no flag at all.
        "false_flag_bound_met": allowed >= 0,
        "false_flag_populations": sorted(populations),
        "collection_minimum": collection_minimum,
        "uncertain_false_flag": uncertain_false_flag,
    }


def thresholds_for_samples(
    samples: Sequence, probs: Sequence[float], *, false_flag: float = 0.02, confidence: float = 0.95
) -> dict:
    """`thresholds_calibrate` on the reals of a validation set: `samples` carry `.label` (0 real) and
    `.source` (their collection), `probs` are the AI probabilities in the same order."""
    reals = [i for i, sample in enumerate(samples) if sample.label == 0]
    return thresholds_calibrate(
        np.asarray(probs)[reals],
        real_sources=[samples[i].source for i in reals],
        false_flag=false_flag,
        confidence=confidence,
    )


def false_flag_at_recall(*, labels: Sequence[int], scores: Sequence[float], recall: float) -> float | None:
    """Share of reals flagged at the highest threshold that still catches `recall` of the AI images: how
    models compare "at equal recall", whatever their shipped thresholds."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    ai = np.sort(s[y])[::-1]
    if len(ai) == 0 or not (~y).any():
        return None
    threshold = ai[max(int(np.ceil(recall * len(ai))) - 1, 0)]
    return float(np.mean(s[~y] >= threshold))


def recall_at_false_flag(*, labels: Sequence[int], scores: Sequence[float], rate: float) -> float | None:
    """Share of AI images caught at the lowest threshold that flags at most `rate` of the reals: how
    detectors compare at equal false flags, whatever their own thresholds."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if not y.any() or y.all():
        return None
    reals = np.sort(s[~y])[::-1]
    allowed = int(np.floor(rate * len(reals)))
    threshold = np.nextafter(reals[allowed], np.inf) if allowed < len(reals) else -np.inf
    return float(np.mean(s[y] >= threshold))


def logits_of(probabilities: Sequence[float]) -> np.ndarray:
    """log(p / (1 - p)), with p kept off 0 and 1 so that a saturated float score stays finite."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def logits_standardised(probabilities: Sequence[float]) -> np.ndarray:
    """A detector's logits standardised over these images, so that no detector weighs more for its scale when
    fused. An image without a score (NaN: a training-only one) is left out and stays NaN."""
    logits = logits_of(probabilities)
    return (logits - np.nanmean(logits)) / (np.nanstd(logits) or 1.0)


def scores_fused(*scores: Sequence[float]) -> np.ndarray:
    """Several detectors' probabilities for the same images as one score: the mean of their standardised
    logits, so nothing is fitted on labels."""
    return np.mean([logits_standardised(probabilities) for probabilities in scores], axis=0)


def flag_counts_by(*, keys: Sequence[str], flagged: Sequence[bool]) -> dict[str, dict]:
    """Per key (a collection, a generator): how many of its images were flagged, of how many, and the share."""
    counts: dict[str, list[int]] = {}
    for key, hit in zip(keys, flagged, strict=True):
        entry = counts.setdefault(key, [0, 0])
        entry[0] += bool(hit)
        entry[1] += 1
    return {key: {"flagged": hits, "images": n, "rate": hits / n} for key, (hits, n) in sorted(counts.items())}


def detector_summary(
    *,
    labels: Sequence[int],
    scores: Sequence[float],
    flagged: Sequence[bool],
    sources: Sequence[str],
    rates: Sequence[float] = (0.01, 0.03),
) -> dict:
    """One detector on one labelled image set: false flags per real collection and recall per AI source (a
    generator) at the detector's own threshold (`flagged`), over all as well, ROC AUC, and the recall when
    each of `rates` of the genuine photos is flagged. `sources` names each image's collection or generator."""
    y = np.asarray(labels, dtype=bool)
    flags = np.asarray(flagged, dtype=bool)
    keys = np.asarray(sources, dtype=object)
    counts = confusion_counts(labels=y, flagged=flags)
    per_real = flag_counts_by(keys=keys[~y].tolist(), flagged=flags[~y].tolist())
    return {
        "images": len(y),
        "real": int((~y).sum()),
        "ai": int(y.sum()),
        "false_flag_rate": false_flag_rate(counts),
        "recall": precision_recall_f1(counts)["recall"],
        "worst_false_flag_rate": max((entry["rate"] for entry in per_real.values()), default=None),
        "false_flags_by_source": per_real,
        "recall_by_source": flag_counts_by(keys=keys[y].tolist(), flagged=flags[y].tolist()),
        "roc_auc": roc_auc(labels=y, scores=scores),
        "recall_at_false_flag": {rate: recall_at_false_flag(labels=y, scores=scores, rate=rate) for rate in rates},
    }


def peer_comparison(*, ours: dict, peers: dict[str, dict], rate: float = 0.03, ratio: float = 1.5) -> dict:
    """Issue 18's two targets on one image set, from `detector_summary` results: ours catches at least `ratio`
    times as many AI images as the best peer when each flags `rate` of the genuine photos, and at its own
    threshold flags fewer genuine photos than every peer in every collection. A collection that neither
    flags at all counts as met: nothing is there to beat."""
    ours_recall = ours["recall_at_false_flag"][rate]
    peer_recalls = {name: summary["recall_at_false_flag"][rate] for name, summary in peers.items()}
    best_peer = max(peer_recalls, key=lambda name: peer_recalls[name] or 0.0) if peer_recalls else None
    best = peer_recalls.get(best_peer)
    achieved = None if ours_recall is None or best is None else ours_recall / best if best else math.inf
    not_fewer = []
    for name, summary in peers.items():
        for collection, entry in ours["false_flags_by_source"].items():
            theirs = summary["false_flags_by_source"].get(collection)
            if theirs is not None and entry["rate"] >= theirs["rate"] and (entry["rate"] or theirs["rate"]):
                not_fewer.append((collection, name))
    return {
        "best_peer": best_peer,
        "ours_recall": ours_recall,
        "best_peer_recall": best,
        "ratio": achieved,
        "ratio_met": achieved is not None and achieved >= ratio,
        "collections_not_fewer": sorted(not_fewer),
        "fewer_everywhere": not not_fewer,
    }


def wilson_interval(*, successes: float, n: float, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; `n` may be an effective (weighted) sample size. None when
    n is 0. Unlike the normal approximation it stays inside [0, 1] and is honest for few trials or p near 0."""
    if n <= 0:
        return None
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Rounding must not put the estimate itself outside its interval (at p = 0 or 1 it is an end).
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


@dataclass(frozen=True)
class Stratum:
    """How one group of uploads reached moderators: `population` uploads were routed this way (flagged for
    review, or cleared), and of those the decided ones count as (final label, flagged by the model)."""

    population: int
    real_flagged: int = 0
    real_cleared: int = 0
    ai_flagged: int = 0
    ai_cleared: int = 0

    @property
    def decided(self) -> int:
        return self.real_flagged + self.real_cleared + self.ai_flagged + self.ai_cleared


def _weighted_rate(parts: Sequence[tuple[float, int, int]], *, confidence: float) -> dict:
    """Post-stratified share of `hits` among `units` (weight, hits, units per stratum), with a Wilson interval
    on Kish's effective sample size, so a few heavily weighted decisions give a wide interval."""
    total = sum(weight * units for weight, _, units in parts)
    squares = sum(weight * weight * units for weight, _, units in parts)
    if total <= 0:
        return {"rate": None, "low": None, "high": None, "effective_n": 0.0}
    rate = sum(weight * hits for weight, hits, _ in parts) / total
    effective = total * total / squares
    low, high = wilson_interval(successes=rate * effective, n=effective, confidence=confidence)
    return {"rate": rate, "low": low, "high": high, "effective_n": effective}


def live_rates(strata: Sequence[Stratum], *, confidence: float = 0.95) -> dict:
    """False-flag rate (share of genuine photos the model flagged) and recall (share of AI images it flagged)
    on live uploads, from moderators' final decisions, by post-stratification: within each stratum the decided
    uploads stand for all its `population`, each weighing population / decided. Only flagged uploads are all
    reviewed; a random spot-check share of cleared ones makes the cleared stratum estimable. Rates are None
    while any non-empty stratum has no decision, since the estimate would then be biased beyond repair.

    Returns {"false_flag": {rate, low, high, effective_n}, "recall": {...}, "decided", "real_decided",
    "ai_decided", "unsampled"} where `unsampled` counts uploads of strata without a decision."""
    unsampled = sum(s.population for s in strata if s.population and not s.decided)
    weighted = [(s.population / s.decided, s) for s in strata if s.decided]
    empty = {"rate": None, "low": None, "high": None, "effective_n": 0.0}
    false_flag = _weighted_rate(
        [(w, s.real_flagged, s.real_flagged + s.real_cleared) for w, s in weighted], confidence=confidence
    )
    recall = _weighted_rate(
        [(w, s.ai_flagged, s.ai_flagged + s.ai_cleared) for w, s in weighted], confidence=confidence
    )
    return {
        "false_flag": empty if unsampled else false_flag,
        "recall": empty if unsampled else recall,
        "decided": sum(s.decided for s in strata),
        "real_decided": sum(s.real_flagged + s.real_cleared for s in strata),
        "ai_decided": sum(s.ai_flagged + s.ai_cleared for s in strata),
        "unsampled": unsampled,
    }
