"""Read-only figures for admins: how often each model flags, and how right it is against moderators.

Ground truth is the moderators' final decision: an approved submission is a real photo, a rejected one is
AI-generated; items not (or not yet finally) decided have no label and only count towards volume and flag
rate. A model "predicts AI" when its verdict flags the item for review (AI or uncertain).

One detection per submission and model counts: the latest version's. Latency is the model's inference time;
results reused for identical bytes (latency 0) are left out of the median.

Per-scenery figures group uploads by the scenery their contributor declared or, with `scenery_by="suggested"`, by
the one the scenery head saw in the image during analysis, so they need not depend on what contributors typed.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import TruncWeek

from detection.core.metrics import Stratum, live_rates, precision_recall_f1
from detection.selectors import model_active_name, model_card_get, model_names_available
from moderation.models import (
    Period,
    Scenery,
    State,
    StatisticsCount,
    StatisticsDay,
    StatisticsDayMedian,
    StatisticsLatency,
    Verdict,
)

PREDICTED_AI = {Verdict.AI, Verdict.UNCERTAIN}
# Which scenery per-scenery figures group by: the counters' field behind each choice (see moderation.counters).
SCENERY_FIELDS = {"declared": "scenery", "suggested": "suggested_scenery"}
SCENERY_BY_CHOICES = [("declared", "Declared by the contributor"), ("suggested", "Suggested from the image")]
NO_SUGGESTION = ("", "No suggestion")
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


@dataclass
class _Tally:
    """The counts behind one row of figures, and its median latency."""

    submissions: int = 0
    flagged: int = 0
    approved: int = 0
    rejected: int = 0
    true_positives: int = 0
    false_positives: int = 0
    median_latency_ms: float | None = None

    def add(self, *, state: str, verdict: str, n: int) -> None:
        flagged = verdict in PREDICTED_AI
        self.submissions += n
        self.flagged += n * flagged
        if state == State.APPROVED:
            self.approved += n
            self.false_positives += n * flagged
        elif state == State.REJECTED:
            self.rejected += n
            self.true_positives += n * flagged


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _figures(tally: _Tally) -> dict:
    tp, fp = tally.true_positives, tally.false_positives
    fn = tally.rejected - tp
    # The evaluation reports' definitions: undefined (None) only where the denominator is zero.
    scores = precision_recall_f1({"tp": tp, "fp": fp, "fn": fn})
    return {
        "submissions": tally.submissions,
        "flagged": tally.flagged,
        "flag_rate": _ratio(tally.flagged, tally.submissions),
        "approved": tally.approved,
        "rejected": tally.rejected,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        **scores,
        "median_latency_ms": tally.median_latency_ms,
    }


def scenery_choices(*, scenery_by: str) -> list[tuple[str, str]]:
    """The rows of a per-scenery table: by suggestion, uploads analysed without one (no head where they ran) too."""
    return [*Scenery.choices, *([NO_SUGGESTION] if scenery_by == "suggested" else [])]


def _in_days(rows: QuerySet, date_from: date | None, date_to: date | None) -> QuerySet:
    """Rows of the tables that count days only, of uploads between date_from and date_to inclusive."""
    if date_from:
        rows = rows.filter(day__gte=date_from)
    if date_to:
        rows = rows.filter(day__lte=date_to)
    return rows


def _month_after(day: date) -> date:
    """The first day of the month after the day's."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _in_dates(rows: QuerySet, *, date_from: date | None, date_to: date | None, per_day: bool = False) -> QuerySet:
    """Counter rows of submissions uploaded between date_from and date_to inclusive: day rows if `per_day`,
    else the fewest that cover the range, the whole months in it from the monthly rows and the days at its
    ends from the daily ones."""
    days = Q(period=Period.DAY)
    if date_from:
        days &= Q(day__gte=date_from)
    if date_to:
        days &= Q(day__lte=date_to)
    if per_day:
        return rows.filter(days)
    # The first day of the first whole month in the range, and the first day after the last whole month.
    months_from = date_from and (date_from if date_from.day == 1 else _month_after(date_from))
    after = date_to and date_to + timedelta(days=1)
    months_to = after and (after if after.day == 1 else after.replace(day=1))
    if months_from and months_to and months_from >= months_to:
        return rows.filter(days)
    months, ends = Q(period=Period.MONTH), []
    if months_from:
        months &= Q(day__gte=months_from)
        ends.append(Q(day__lt=months_from))
    if months_to:
        months &= Q(day__lt=months_to)
        ends.append(Q(day__gte=months_to))
    return rows.filter(reduce(or_, [months, *(days & end for end in ends)]))


def _counts(*, date_from: date | None, date_to: date | None, model_name: str) -> QuerySet[StatisticsCount]:
    """The counters of the model's results on submissions uploaded between date_from and date_to inclusive."""
    return _in_dates(StatisticsCount.objects.filter(model_name=model_name), date_from=date_from, date_to=date_to)


# The median of each group's histogram, as statistics.median of its values one by one would give it: of n
# values (0-based) the (n - 1) // 2-th and the n // 2-th, averaged; a bucket holds the values from
# upto - total to upto - 1. In whole numbers: 2 * upto >= n and 2 * (upto - total) <= n.
_MEDIANS = """
WITH histogram ({columns}) AS ({histogram}),
cumulative AS (
    SELECT {group} AS grp, latency_ms, total,
        SUM(total) OVER (PARTITION BY {group} ORDER BY latency_ms) AS upto,
        SUM(total) OVER (PARTITION BY {group}) AS n
    FROM histogram WHERE total > 0
)
SELECT grp, AVG(latency_ms) FROM cumulative WHERE 2 * upto >= n AND 2 * (upto - total) <= n GROUP BY grp
"""


def _latency_medians(
    *,
    date_from: date | None,
    date_to: date | None,
    model_names: Iterable[str],
    by: str | None,
    scenery_by: str = "declared",
    scenery: str | None = None,
) -> dict[object, float]:
    """The median latency per model_name, day or scenery (`by`; None: of everything), computed in the
    database from the smallest histogram that has the grouping (see StatisticsLatency)."""
    latencies = _in_dates(
        StatisticsLatency.objects.filter(model_name__in=model_names),
        date_from=date_from,
        date_to=date_to,
        per_day=by == "day",
    )
    if by == "scenery" or scenery is not None:
        latencies = latencies.filter(scenery_by=scenery_by)
        if scenery is not None:
            latencies = latencies.filter(scenery=scenery)
    else:
        latencies = latencies.filter(scenery_by="")
    groups = [by] if by else []
    histogram, params = (
        latencies.order_by().values_list(*groups, "latency_ms").annotate(total=Sum("n")).query.sql_with_params()
    )
    sql = _MEDIANS.format(
        columns=", ".join([*(["grp_value"] if by else []), "latency_ms", "total"]),
        histogram=histogram,
        group="grp_value" if by else "0",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if by == "day":  # SQLite reads dates back as text
        return {(date.fromisoformat(k) if isinstance(k, str) else k): v for k, v in rows}
    return {k if by else None: v for k, v in rows}


def _tallies(
    *,
    date_from: date | None,
    date_to: date | None,
    model_names: Iterable[str],
    by: str | None,
    scenery_by: str = "declared",
    scenery: str | None = None,
) -> dict[object, _Tally]:
    """One tally per model_name, day or scenery (`by`; None: one for everything), each upload counted once by
    its model's latest result, optionally of one scenery only. Grouped in the database."""
    counts = _in_dates(
        StatisticsCount.objects.filter(model_name__in=model_names, latest=True),
        date_from=date_from,
        date_to=date_to,
        per_day=by == "day",
    )
    if scenery is not None:
        counts = counts.filter(**{SCENERY_FIELDS[scenery_by]: scenery})
    groups = [SCENERY_FIELDS[scenery_by] if by == "scenery" else by] if by else []
    tallies: dict[object, _Tally] = defaultdict(_Tally)
    for row in counts.order_by().values_list(*groups, "state", "verdict").annotate(total=Sum("n")):
        *group, state, verdict, total = row
        if total:
            tallies[group[0] if group else None].add(state=state, verdict=verdict, n=total)
    medians = _latency_medians(
        date_from=date_from, date_to=date_to, model_names=model_names, by=by, scenery_by=scenery_by, scenery=scenery
    )
    for key, median in medians.items():
        tallies[key].median_latency_ms = median
    return tallies


def _daily_tallies(*, date_from: date | None, date_to: date | None, model_name: str) -> dict[date, _Tally]:
    """One tally per upload day, sceneries pooled: from the rows that count days only, with the medians
    stored as results are written (StatisticsDay, StatisticsDayMedian)."""
    tallies: dict[date, _Tally] = defaultdict(_Tally)
    counts = _in_days(StatisticsDay.objects.filter(model_name=model_name, latest=True), date_from, date_to)
    for day, state, verdict, total in counts.order_by().values_list("day", "state", "verdict").annotate(total=Sum("n")):
        if total:
            tallies[day].add(state=state, verdict=verdict, n=total)
    medians = _in_days(StatisticsDayMedian.objects.filter(model_name=model_name), date_from, date_to)
    for day, median in medians.values_list("day", "median_latency_ms"):
        if day in tallies:
            tallies[day].median_latency_ms = median
    return tallies


def scenery_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    scenery_by: str = "declared",
) -> dict:
    """Figures per scenery (declared, or suggested: see the module's docstring) and overall for one model (the
    active one by default), on submissions uploaded between date_from and date_to inclusive.

    Returns {"model_name", "date_from", "date_to", "scenery_by", "rows": [{"scenery", "label", **figures}],
    "overall": figures}. Every scenery has a row, empty ones with zero counts and None ratios.
    """
    model_name = model_name or model_active_name()
    tallies = _tallies(
        date_from=date_from, date_to=date_to, model_names=[model_name], by="scenery", scenery_by=scenery_by
    )
    overall = _Tally()
    for tally in tallies.values():
        for name in ("submissions", "flagged", "approved", "rejected", "true_positives", "false_positives"):
            setattr(overall, name, getattr(overall, name) + getattr(tally, name))
    overall.median_latency_ms = _latency_medians(
        date_from=date_from, date_to=date_to, model_names=[model_name], by=None
    ).get(None)
    return {
        "model_name": model_name,
        "date_from": date_from,
        "date_to": date_to,
        "scenery_by": scenery_by,
        "rows": [
            {"scenery": value, "label": label, **_figures(tallies.get(value, _Tally()))}
            for value, label in scenery_choices(scenery_by=scenery_by)
        ],
        "overall": _figures(overall),
    }


def daily_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    scenery: str | None = None,
    scenery_by: str = "declared",
) -> dict:
    """The same figures per upload day (UTC), oldest first, optionally for one scenery (declared or suggested);
    days without submissions are left out. Returns {"model_name", "scenery", "days": [{"day", **figures}]}.
    """
    model_name = model_name or model_active_name()
    if scenery:
        tallies = _tallies(
            date_from=date_from,
            date_to=date_to,
            model_names=[model_name],
            by="day",
            scenery_by=scenery_by,
            scenery=scenery,
        )
    else:
        tallies = _daily_tallies(date_from=date_from, date_to=date_to, model_name=model_name)
    days = sorted(day for day, tally in tallies.items() if tally.submissions)
    return {
        "model_name": model_name,
        "scenery": scenery,
        "days": [{"day": day, **_figures(tallies[day])} for day in days],
    }


def model_names_seen() -> list[str]:
    """Every model with trained weights or with results on record (weights may since have been removed)."""
    # The monthly rows: the fewest that name every model counted.
    recorded = (
        StatisticsCount.objects.filter(period=Period.MONTH, n__gt=0)
        .order_by()
        .values_list("model_name", flat=True)
        .distinct()
    )
    return sorted({*model_names_available(), *recorded})


def model_comparison(
    *, date_from: date | None = None, date_to: date | None = None, model_names: Iterable[str]
) -> list[dict]:
    """Overall figures per model, side by side: [{"model_name", **figures}]."""
    model_names = list(model_names)
    tallies = _tallies(date_from=date_from, date_to=date_to, model_names=model_names, by="model_name")
    return [{"model_name": name, **_figures(tallies.get(name, _Tally()))} for name in model_names]


def chart_series(*, by_scenery: dict, daily: dict, models: list[dict], live: dict) -> dict:
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
        "live_weeks": [w["week"].isoformat() for w in live["weeks"]],
        **{f"live_week_{field}": column(live["weeks"], field) for field in LIVE_CHART_FIELDS},
        **{f"live_scenery_{field}": column(live["sceneries"], field) for field in LIVE_CHART_FIELDS},
    }


# Live error rates ----------------------------------------------------------------------------------------------
LIVE_FIELDS = [
    "submissions",
    "flagged",
    "spot_checked",
    "human_share",
    "decided",
    "real_decided",
    "ai_decided",
    "false_flag_rate",
    "false_flag_low",
    "false_flag_high",
    "recall",
    "recall_low",
    "recall_high",
    "unsampled",
]
LIVE_CHART_FIELDS = ("false_flag_rate", "false_flag_low", "false_flag_high", "recall", "human_share")
FINAL_LABELS = {State.APPROVED: 0, State.REJECTED: 1}  # a pending appeal is not final yet


@dataclass
class _LiveTally:
    """The counts behind one row of live figures: per routing stratum (flagged, cleared), the uploads and the
    decided sample by final label and the model's verdict, and the spot checks among cleared uploads."""

    population: Counter = field(default_factory=Counter)  # {routed_flagged: uploads}
    sample: Counter = field(default_factory=Counter)  # {(routed_flagged, label, model_flagged): uploads}
    spot_checked: int = 0

    def add(self, *, routed: str, spot_checked: bool, state: str, verdict: str, n: int) -> None:
        routed_flagged = routed in PREDICTED_AI  # how the upload went on: flagged for review, or cleared
        self.population[routed_flagged] += n
        if not routed_flagged and spot_checked:
            self.spot_checked += n
        label = FINAL_LABELS.get(state)  # 0 approved (genuine), 1 rejected (AI), None not finally decided
        # In the cleared stratum only spot checks count as a sample, since a cleared upload someone chose to
        # open is no random draw.
        if label is not None and (routed_flagged or spot_checked):
            self.sample[routed_flagged, label, verdict in PREDICTED_AI] += n


def _stratum(tally: _LiveTally, *, routed_flagged: bool) -> Stratum:
    def sample(label: int, model_flagged: bool) -> int:
        return tally.sample[routed_flagged, label, model_flagged]

    return Stratum(
        population=tally.population[routed_flagged],
        real_flagged=sample(0, True),
        real_cleared=sample(0, False),
        ai_flagged=sample(1, True),
        ai_cleared=sample(1, False),
    )


def _live_figures(tally: _LiveTally, *, confidence: float) -> dict:
    flagged = tally.population[True]
    submissions = flagged + tally.population[False]
    strata = [_stratum(tally, routed_flagged=True), _stratum(tally, routed_flagged=False)]
    rates = live_rates(strata, confidence=confidence)
    false_flag, recall = rates["false_flag"], rates["recall"]
    return {
        "submissions": submissions,
        "flagged": flagged,
        "spot_checked": tally.spot_checked,
        "human_share": _ratio(flagged + tally.spot_checked, submissions),
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


def _live_tallies(counts: QuerySet[StatisticsCount], *, by: str) -> dict[object, _LiveTally]:
    tallies: dict[object, _LiveTally] = defaultdict(_LiveTally)
    fields = ("routed", "spot_checked", "state", "verdict")
    for row in counts.order_by().values(by, *fields).annotate(total=Sum("n")).filter(total__gt=0):
        tallies[row[by]].add(**{f: row[f] for f in fields}, n=row["total"])
    return tallies


def live_statistics(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    model_name: str | None = None,
    confidence: float = 0.95,
    scenery_by: str = "declared",
) -> dict:
    """Live error rates of one model (the active one by default) from moderators' final decisions, appeals
    included: false flags among the photos moderators approved, recall among those they rejected, and the
    share of uploads a human saw. Only flagged uploads are all reviewed, so each rate is estimated by
    post-stratification over flagged uploads and the spot-checked share of cleared ones
    (`detection.core.metrics.live_rates`), with Wilson bounds at `confidence`.

    Returns {"model_name", "confidence", "overall", "versions": [{"version", ...}], "sceneries": [{"scenery",
    "label", ...}], "weeks": [{"week" (its Monday), ...}]}, each with LIVE_FIELDS. Per version every version's
    results count; otherwise one per upload, the latest version's. Sceneries as `scenery_by` says.
    """
    model_name = model_name or model_active_name()
    # Uploads not yet routed (no verdict of their own) are in no stratum.
    counts = _counts(date_from=date_from, date_to=date_to, model_name=model_name).exclude(routed="")
    versions = _live_tallies(counts, by="model_version")
    sceneries = _live_tallies(counts.filter(latest=True), by=SCENERY_FIELDS[scenery_by])
    # Weeks straddle months, so they are summed from the days. They start on Monday in PostgreSQL's date_trunc
    # as in date.weekday().
    days = _in_days(StatisticsDay.objects.filter(model_name=model_name, latest=True), date_from, date_to)
    weeks = _live_tallies(days.exclude(routed="").annotate(week=TruncWeek(F("day"))), by="week")
    overall = _LiveTally()
    for tally in sceneries.values():
        overall.population.update(tally.population)
        overall.sample.update(tally.sample)
        overall.spot_checked += tally.spot_checked
    weeks = {_as_date(week): tally for week, tally in weeks.items()}
    return {
        "model_name": model_name,
        "confidence": confidence,
        "overall": _live_figures(overall, confidence=confidence),
        "versions": [{"version": v, **_live_figures(versions[v], confidence=confidence)} for v in sorted(versions)],
        "sceneries": [
            {
                "scenery": value,
                "label": label,
                **_live_figures(sceneries.get(value, _LiveTally()), confidence=confidence),
            }
            for value, label in scenery_choices(scenery_by=scenery_by)
        ],
        "weeks": [{"week": w, **_live_figures(weeks[w], confidence=confidence)} for w in sorted(weeks)],
    }


def _as_date(value: date) -> date:
    """TruncWeek of a date field reads back as a datetime on some databases; the weeks are dates."""
    return value.date() if hasattr(value, "date") else value


def live_tables(live: dict) -> list[tuple[str, str, list[tuple[str, dict]]]]:
    """`live_statistics` as the page's three tables: (title, key, [(row label, figures)])."""
    return [
        ("version", "version", [(v["version"], v) for v in live["versions"]]),
        ("scenery", "scenery", [(r["label"], r) for r in live["sceneries"]]),
        ("week", "week", [(w["week"].isoformat(), w) for w in live["weeks"]]),
    ]


def live_false_flag_check(*, model_name: str, confidence: float = 0.95) -> dict | None:
    """The live false-flag rate of the model card's version against the card's promise (its calibration's
    target). `exceeded` only when even the lower confidence bound is above the promise, so a handful of
    unlucky decisions raises no alarm. None for a model without a card or a promise."""
    card = model_card_get(name=model_name)
    promised = card.thresholds.false_flag_target if card else None
    if promised is None:
        return None
    live = live_statistics(model_name=model_name, confidence=confidence)
    figures = next((v for v in live["versions"] if v["version"] == card.version), None)
    low = figures["false_flag_low"] if figures else None
    return {
        "model_name": model_name,
        "version": card.version,
        "promised": promised,
        "confidence": confidence,
        "figures": figures,
        "exceeded": low is not None and low > promised,
    }
