"""Recalibration: a model's thresholds chosen again from moderators' decisions (approved as genuine, rejected
as AI) merged with the validation scores its card's thresholds came from (`heldout_scores.json`), by the same
Neyman-Pearson bound as training (`detection.core.metrics.thresholds_calibrate`), shown before it is applied.

Decided uploads are no random sample: every flagged upload is reviewed, cleared ones only at the spot-check
share. An order-statistic bound needs one, so flagged decisions are thinned (by a fixed hash of the upload)
to the spot checks' inclusion probability, and cleared uploads opened by choice are left out; what remains is
an equal-probability sample of the model version's uploads.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from common.errors import Conflict, Invalid
from detection import services_settings
from detection.core.card import ModelCard
from detection.core.files import heldout_scores_load
from detection.core.metrics import false_flags_allowed, thresholds_calibrate
from detection.models import Detection, ModelSetting, ThresholdChange
from detection.selectors import model_card_get
from moderation.models import Scenery
from moderation.reporting import FINAL_LABELS, PREDICTED_AI

PLATFORM_SOURCE = "platform decisions"


class RecalibrationRefused(Invalid):
    """Too few decisions, or a model without a card: the message says what is missing."""


class RecalibrationStale(Conflict):
    """Decisions arrived after the preview, so the thresholds to confirm are no longer the ones shown."""


@dataclass(frozen=True)
class Scored:
    score: float
    label: int  # 1 AI
    scenery: str


@dataclass(frozen=True)
class RecalibrationProposal:
    model_name: str
    version: str
    proposed: dict  # thresholds_calibrate's result: low, high and how they were chosen
    decided: list[Scored]
    heldout: list[Scored]
    current: dict[str, dict[str, float]]  # the band in force per scenery now
    note: str = ""
    rates: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """What the audit trail keeps of the proposal an admin confirmed."""
        return {
            "version": self.version,
            "proposed": {"low": self.proposed["low"], "high": self.proposed["high"]},
            "decided_real": sum(s.label == 0 for s in self.decided),
            "decided_ai": sum(s.label == 1 for s in self.decided),
            "heldout": len(self.heldout),
            "rates": self.rates,
            "note": self.note,
        }


def _inclusion_key(submission_id: int) -> float:
    """A fixed pseudo-random number in [0, 1) per upload: the same preview and the same confirmation."""
    digest = hashlib.sha256(f"recalibration:{submission_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decided_sample(*, model_name: str, version: str) -> list[Scored]:
    """The version's scores on finally decided uploads, thinned to an equal-probability sample (module doc)."""
    rows = Detection.objects.filter(model_name=model_name, model_version=version).exclude(submission__verdict="")
    strata: dict[bool, list[tuple]] = defaultdict(list)
    for submission_id, score, scenery, state, routed, share in rows.values_list(
        "submission_id",
        "ai_probability",
        "submission__scenery",
        "submission__state",
        "submission__verdict",
        "submission__spot_check_share",
    ):
        strata[routed in PREDICTED_AI].append((submission_id, score, scenery, FINAL_LABELS.get(state), share))
    flagged, cleared = strata[True], strata[False]
    flagged_decided = [r for r in flagged if r[3] is not None]
    spot_decided = [r for r in cleared if r[3] is not None and r[4] is not None]
    spot_checked = len(spot_decided) / len(cleared) if cleared else 1.0
    reviewed = len(flagged_decided) / len(flagged) if flagged else 1.0
    # A flagged upload was decided with probability `reviewed`, a cleared one with `spot_checked`; thinning
    # the more likely stratum to the other's rate gives every upload the same chance to be in the sample.
    if reviewed > spot_checked:
        flagged_decided = [r for r in flagged_decided if _inclusion_key(r[0]) < spot_checked / reviewed]
    elif spot_checked > reviewed:
        spot_decided = [r for r in spot_decided if _inclusion_key(r[0]) < reviewed / spot_checked]
    return [Scored(score=r[1], label=r[3], scenery=r[2]) for r in flagged_decided + spot_decided]


def _bands_in_force(*, model_name: str, card: ModelCard) -> dict[str, dict[str, float]]:
    setting = ModelSetting.objects.filter(model_name=model_name).first()
    overrides = setting.thresholds if setting else {}
    return {s: overrides.get(s) or card.thresholds.band() for s in Scenery.values}


def _rates(scored: list[Scored], high_for) -> dict:
    reals = [s for s in scored if s.label == 0]
    ais = [s for s in scored if s.label == 1]
    false_flags = sum(s.score >= high_for(s) for s in reals)
    caught = sum(s.score >= high_for(s) for s in ais)
    return {
        "false_flags": false_flags,
        "reals": len(reals),
        "false_flag_rate": false_flags / len(reals) if reals else None,
        "caught": caught,
        "ais": len(ais),
        "recall": caught / len(ais) if ais else None,
    }


def recalibration_propose(*, model_name: str) -> RecalibrationProposal:
    """New thresholds for the model card's version and the rates before and after, on the decided sample,
    on the held-out validation scores and on both; nothing is changed."""
    card = model_card_get(name=model_name)
    if card is None:
        raise RecalibrationRefused(f"{model_name} has no trained weights.")
    band = card.thresholds
    # The defaults of a card calibrated before its thresholds recorded how they were chosen.
    target = 0.02 if band.false_flag_target is None else band.false_flag_target
    confidence = 0.95 if band.false_flag_confidence is None else band.false_flag_confidence
    decided = decided_sample(model_name=model_name, version=card.version)
    decided_reals = [s for s in decided if s.label == 0]
    needed = next(n for n in range(1, 100_000) if false_flags_allowed(n, rate=target, confidence=confidence) >= 0)
    if len(decided_reals) < needed:
        raise RecalibrationRefused(
            f"{model_name} {card.version}: {len(decided_reals)} decided genuine photos in the sample; at least "
            f"{needed} are needed to back a {target:.0%} false-flag bound at {confidence:.0%} confidence on the "
            "platform's own uploads. Decide more spot checks."
        )
    payload = heldout_scores_load(directory=Path(settings.DETECTOR_WEIGHTS_DIR) / model_name)
    note = ""
    if payload is None or payload.get("version") != card.version:
        heldout, heldout_sources = [], []
        note = (
            f"{model_name} ships no held-out scores for version {card.version} (heldout_scores.json): "
            "thresholds from decisions alone."
        )
    else:
        rows = payload["samples"]
        heldout = [Scored(score=r["score"], label=r["label"], scenery=r.get("scenery", "")) for r in rows]
        heldout_sources = [r["source"] for r in rows if r["label"] == 0]
    real_scores = [s.score for s in heldout if s.label == 0] + [s.score for s in decided_reals]
    proposed = thresholds_calibrate(
        np.asarray(real_scores),
        real_sources=heldout_sources + [PLATFORM_SOURCE] * len(decided_reals),
        false_flag=target,
        confidence=confidence,
        uncertain_false_flag=0.10 if band.uncertain_false_flag is None else band.uncertain_false_flag,
    )
    current = _bands_in_force(model_name=model_name, card=card)

    def before(s: Scored) -> float:
        return current.get(s.scenery, current[Scenery.OTHER])["high"]

    def after(s: Scored) -> float:
        return proposed["high"]

    populations = [("decided uploads", decided), ("held-out validation", heldout), ("both", decided + heldout)]
    rates = [
        {"population": name, "before": _rates(scored, before), "after": _rates(scored, after)}
        for name, scored in populations
        if scored
    ]
    return RecalibrationProposal(
        model_name=model_name,
        version=card.version,
        proposed=proposed,
        decided=decided,
        heldout=heldout,
        current=current,
        note=note,
        rates=rates,
    )


def recalibration_apply(
    *, model_name: str, confirmed_low: float, confirmed_high: float, actor: AbstractBaseUser | None
) -> ThresholdChange:
    """Apply the proposal the admin saw, to every scenery; refused if it is no longer the one they saw.
    Audited with its before/after rates and revertible like any threshold change."""
    proposal = recalibration_propose(model_name=model_name)
    if not (
        np.isclose(proposal.proposed["low"], confirmed_low) and np.isclose(proposal.proposed["high"], confirmed_high)
    ):
        raise RecalibrationStale(
            f"The recalibrated thresholds of {model_name} changed since the preview (new decisions); review again."
        )
    band = {"low": proposal.proposed["low"], "high": proposal.proposed["high"]}
    return services_settings.model_thresholds_update(
        model_name=model_name,
        thresholds=dict.fromkeys(Scenery.values, band),
        actor=actor,
        kind=ThresholdChange.Kind.RECALIBRATION,
        summary=proposal.summary(),
    )
