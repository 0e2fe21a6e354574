"""The statistics as moderation.reporting computed them before the counters: every detection read into Python.

Kept as the straightforward reference the counters' figures must equal (tests/test_statistics_counters.py);
the module docstring of moderation.reporting says what the figures mean.
"""

import statistics as pystats
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import QuerySet

from detection.core.metrics import Stratum, live_rates, precision_recall_f1
from detection.models import Detection
from detection.selectors import model_active_name
from moderation.models import State
from moderation.reporting import FINAL_LABELS, PREDICTED_AI, scenery_choices

# Which scenery per-scenery figures group by: the submission field behind each choice.
SCENERY_FIELDS = {"declared": "submission__scenery", "suggested": "submission__suggested_scenery"}


@dataclass(frozen=True)
class _Row:
    scenery: str
    day: date
    flagged: bool
    state: str
    latency_ms: float | None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _figures(rows: list[_Row]) -> dict:
    flagged = sum(r.flagged for r in rows)
    approved = [r for r in rows if r.state == State.APPROVED]
    rejected = [r for r in rows if r.state == State.REJECTED]
    tp = sum(r.flagged for r in rejected)
    fp = sum(r.flagged for r in approved)
    fn = len(rejected) - tp
    # The evaluation reports' definitions: undefined (None) only where the denominator is zero.
    scores = precision_recall_f1({"tp": tp, "fp": fp, "fn": fn})
    latencies = [r.latency_ms for r in rows if r.latency_ms is not None]
    return {
        "submissions": len(rows),
        "flagged": flagged,
        "flag_rate": _ratio(flagged, len(rows)),
        "approved": len(approved),
        "rejected": len(rejected),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        **scores,
        "median_latency_ms": pystats.median(latencies) if latencies else None,
    }


def _detections(*, date_from: date | None, date_to: date | None, model_name: str) -> QuerySet[Detection]:
    """The model's results on submissions uploaded between date_from and date_to inclusive."""
    detections = Detection.objects.filter(model_name=model_name)
    if date_from:
        detections = detections.filter(submission__created_at__date__gte=date_from)
    if date_to:
        detections = detections.filter(submission__created_at__date__lte=date_to)
    return detections


def _rows(*, date_from: date | None, date_to: date | None, model_name: str, scenery_by: str) -> list[_Row]:
    detections = _detections(date_from=date_from, date_to=date_to, model_name=model_name)
    latest: dict[int, _Row] = {}
    # Ordered by creation so the latest model version's detection overwrites an earlier one.
    for submission_id, scenery, created_at, state, verdict, latency_ms, reused_from_id in detections.order_by(
        "created_at", "id"
    ).values_list(
        "submission_id",
        SCENERY_FIELDS[scenery_by],
        "submission__created_at",
        "submission__state",
        "verdict",
        "latency_ms",
        "reused_from_id",
    ):
        latest[submission_id] = _Row(
            scenery=scenery,
            day=created_at.date(),
            flagged=verdict in PREDICTED_AI,
            state=state,
            latency_ms=None if reused_from_id else latency_ms,
        )
    return list(latest.values())


def _grouped(rows: Iterable[_Row], key: Callable[[_Row], Hashable]) -> dict:
    groups: dict = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def scenery_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    scenery_by: str = "declared",
) -> dict:
    """The former `reporting.scenery_statistics`, reading every detection."""
    model_name = model_name or model_active_name()
    rows = _rows(date_from=date_from, date_to=date_to, model_name=model_name, scenery_by=scenery_by)
    groups = _grouped(rows, lambda r: r.scenery)
    return {
        "model_name": model_name,
        "date_from": date_from,
        "date_to": date_to,
        "scenery_by": scenery_by,
        "rows": [
            {"scenery": value, "label": label, **_figures(groups.get(value, []))}
            for value, label in scenery_choices(scenery_by=scenery_by)
        ],
        "overall": _figures(rows),
    }


def daily_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    scenery: str | None = None,
    scenery_by: str = "declared",
) -> dict:
    """The former `reporting.daily_statistics`, reading every detection."""
    model_name = model_name or model_active_name()
    rows = _rows(date_from=date_from, date_to=date_to, model_name=model_name, scenery_by=scenery_by)
    if scenery:
        rows = [r for r in rows if r.scenery == scenery]
    groups = _grouped(rows, lambda r: r.day)
    return {
        "model_name": model_name,
        "scenery": scenery,
        "days": [{"day": day, **_figures(groups[day])} for day in sorted(groups)],
    }


def model_comparison(
    *, date_from: date | None = None, date_to: date | None = None, model_names: Iterable[str]
) -> list[dict]:
    """The former `reporting.model_comparison`, reading every detection."""
    return [
        {"model_name": name, **scenery_statistics(date_from=date_from, date_to=date_to, model_name=name)["overall"]}
        for name in model_names
    ]


# Live error rates ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LiveRow:
    submission_id: int
    version: str
    scenery: str
    week: date
    routed_flagged: bool  # how the upload went on: flagged for review, or cleared
    spot_checked: bool
    model_flagged: bool  # what this model version said, which need not be what routed it
    label: int | None  # the final decision: 0 approved (genuine), 1 rejected (AI), None not finally decided


def _live_rows(*, date_from: date | None, date_to: date | None, model_name: str, scenery_by: str) -> list[_LiveRow]:
    detections = _detections(date_from=date_from, date_to=date_to, model_name=model_name).exclude(
        submission__verdict=""
    )
    rows = []
    for submission_id, version, scenery, created_at, state, routed, share, verdict in detections.order_by(
        "created_at", "id"
    ).values_list(
        "submission_id",
        "model_version",
        SCENERY_FIELDS[scenery_by],
        "submission__created_at",
        "submission__state",
        "submission__verdict",
        "submission__spot_check_share",
        "verdict",
    ):
        day = created_at.date()
        rows.append(
            _LiveRow(
                submission_id=submission_id,
                version=version,
                scenery=scenery,
                week=day - timedelta(days=day.weekday()),
                routed_flagged=routed in PREDICTED_AI,
                spot_checked=share is not None,
                model_flagged=verdict in PREDICTED_AI,
                label=FINAL_LABELS.get(state),
            )
        )
    return rows


def _stratum(rows: list[_LiveRow]) -> Stratum:
    """The former `reporting._stratum`, reading every detection."""
    sample = [r for r in rows if r.label is not None and (r.routed_flagged or r.spot_checked)]
    return Stratum(
        population=len(rows),
        real_flagged=sum(r.label == 0 and r.model_flagged for r in sample),
        real_cleared=sum(r.label == 0 and not r.model_flagged for r in sample),
        ai_flagged=sum(r.label == 1 and r.model_flagged for r in sample),
        ai_cleared=sum(r.label == 1 and not r.model_flagged for r in sample),
    )


def _live_figures(rows: list[_LiveRow], *, confidence: float) -> dict:
    flagged = [r for r in rows if r.routed_flagged]
    cleared = [r for r in rows if not r.routed_flagged]
    spot_checked = sum(r.spot_checked for r in cleared)
    rates = live_rates([_stratum(flagged), _stratum(cleared)], confidence=confidence)
    false_flag, recall = rates["false_flag"], rates["recall"]
    return {
        "submissions": len(rows),
        "flagged": len(flagged),
        "spot_checked": spot_checked,
        "human_share": _ratio(len(flagged) + spot_checked, len(rows)),
        "decided": rates["decided"],
        "real_decided": rates["real_decided"],
        "ai_decided": rates["ai_decided"],
        "false_flag_rate": false_flag["rate"],
        "false_flag_low": false_flag["low"],
        "false_flag_high": false_flag["high"],
        "recall": recall["rate"],
        "recall_low": recall["low"],
        "recall_high": recall["high"],
        "unsampled": rates["unsampled"],
    }


def live_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    confidence: float = 0.95,
    scenery_by: str = "declared",
) -> dict:
    """The former `reporting.live_statistics`, reading every detection."""
    model_name = model_name or model_active_name()
    rows = _live_rows(date_from=date_from, date_to=date_to, model_name=model_name, scenery_by=scenery_by)
    # Rows come oldest first, so the latest version's result on an upload overwrites an earlier one.
    latest = list({r.submission_id: r for r in rows}.values())
    versions = _grouped(rows, lambda r: r.version)
    sceneries = _grouped(latest, lambda r: r.scenery)
    weeks = _grouped(latest, lambda r: r.week)
    return {
        "model_name": model_name,
        "confidence": confidence,
        "overall": _live_figures(latest, confidence=confidence),
        "versions": [{"version": v, **_live_figures(versions[v], confidence=confidence)} for v in sorted(versions)],
        "sceneries": [
            {"scenery": value, "label": label, **_live_figures(sceneries.get(value, []), confidence=confidence)}
            for value, label in scenery_choices(scenery_by=scenery_by)
        ],
        "weeks": [{"week": w, **_live_figures(weeks[w], confidence=confidence)} for w in sorted(weeks)],
    }
