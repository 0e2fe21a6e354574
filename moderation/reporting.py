"""Read-only figures for admins: how often each model flags, and how right it is against moderators.

Ground truth is the moderators' final decision: an approved submission is a real photo, a rejected one is
AI-generated; items not (or not yet finally) decided have no label and only count towards volume and flag
rate. A model "predicts AI" when its verdict flags the item for review (AI or uncertain).

One detection per submission and model counts: the latest version's. Latency is the model's inference time;
results reused for identical bytes (latency 0) are left out of the median.
"""

import statistics as pystats
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date

from detection.core.metrics import precision_recall_f1
from detection.models import Detection
from detection.selectors import model_active_name, model_names_available
from moderation.models import Scenery, State, Verdict

PREDICTED_AI = {Verdict.AI, Verdict.UNCERTAIN}
FIGURE_FIELDS = [
    "submissions",
    "flagged",
    "flag_rate",
    "approved",
    "rejected",
    "true_positives",
    "false_positives",
    "false_negatives",
    "precision",
    "recall",
    "f1",
    "median_latency_ms",
]


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


def _rows(*, date_from: date | None, date_to: date | None, model_name: str) -> list[_Row]:
    detections = Detection.objects.filter(model_name=model_name)
    if date_from:
        detections = detections.filter(submission__created_at__date__gte=date_from)
    if date_to:
        detections = detections.filter(submission__created_at__date__lte=date_to)
    latest: dict[int, _Row] = {}
    # Ordered by creation so the latest model version's detection overwrites an earlier one.
    for submission_id, scenery, created_at, state, verdict, latency_ms, reused_from_id in detections.order_by(
        "created_at", "id"
    ).values_list(
        "submission_id",
        "submission__scenery",
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
    *, date_from: date | None = None, date_to: date | None = None, model_name: str | None = None
) -> dict:
    """Figures per scenery and overall for one model (the active one by default), on submissions uploaded
    between date_from and date_to inclusive.

    Returns {"model_name", "date_from", "date_to", "rows": [{"scenery", "label", **figures}], "overall": figures}.
    Every scenery has a row, empty ones with zero counts and None ratios.
    """
    model_name = model_name or model_active_name()
    rows = _rows(date_from=date_from, date_to=date_to, model_name=model_name)
    groups = _grouped(rows, lambda r: r.scenery)
    return {
        "model_name": model_name,
        "date_from": date_from,
        "date_to": date_to,
        "rows": [
            {"scenery": value, "label": label, **_figures(groups.get(value, []))} for value, label in Scenery.choices
        ],
        "overall": _figures(rows),
    }


def daily_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    scenery: str | None = None,
) -> dict:
    """The same figures per upload day (UTC), oldest first, optionally for one scenery; days without
    submissions are left out. Returns {"model_name", "scenery", "days": [{"day", **figures}]}.
    """
    model_name = model_name or model_active_name()
    rows = _rows(date_from=date_from, date_to=date_to, model_name=model_name)
    if scenery:
        rows = [r for r in rows if r.scenery == scenery]
    groups = _grouped(rows, lambda r: r.day)
    return {
        "model_name": model_name,
        "scenery": scenery,
        "days": [{"day": day, **_figures(groups[day])} for day in sorted(groups)],
    }


def model_names_seen() -> list[str]:
    """Every model with trained weights or with results on record (weights may since have been removed)."""
    recorded = Detection.objects.order_by().values_list("model_name", flat=True).distinct()
    return sorted({*model_names_available(), *recorded})


def model_comparison(
    *, date_from: date | None = None, date_to: date | None = None, model_names: Iterable[str]
) -> list[dict]:
    """Overall figures per model, side by side: [{"model_name", **figures}]."""
    return [
        {"model_name": name, **scenery_statistics(date_from=date_from, date_to=date_to, model_name=name)["overall"]}
        for name in model_names
    ]


def chart_series(*, by_scenery: dict, daily: dict, models: list[dict]) -> dict:
    """The figures above as the plain lists a browser chart plots (None where a ratio is undefined)."""

    def column(rows: list[dict], field: str) -> list:
        return [row[field] for row in rows]

    return {
        "sceneries": column(by_scenery["rows"], "label"),
        "flag_rate": column(by_scenery["rows"], "flag_rate"),
        "precision": column(by_scenery["rows"], "precision"),
        "recall": column(by_scenery["rows"], "recall"),
        "f1": column(by_scenery["rows"], "f1"),
        "days": [d["day"].isoformat() for d in daily["days"]],
        "daily_submissions": column(daily["days"], "submissions"),
        "daily_flag_rate": column(daily["days"], "flag_rate"),
        "models": column(models, "model_name"),
        "model_precision": column(models, "precision"),
        "model_recall": column(models, "recall"),
        "model_f1": column(models, "f1"),
    }
