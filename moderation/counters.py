"""The statistics counters (moderation.models.StatisticsCount, StatisticsDay, StatisticsLatency and
StatisticsDayMedian): writes.

Every figure of `moderation.reporting` is a sum over detections grouped by a few fields of the detection and
its submission, and a median latency. At a million submissions reading those rows takes minutes, so each
detection is counted once under its key (StatisticsEntry remembers which) and the page sums the counts.

Writers of one upload day share its counter rows, which stay locked until their transaction commits: writes
on one day queue for them, a few milliseconds each, instead of running side by side.

A submission's counts change when one of its detections is made or its state, verdict, spot check or
suggested scenery changes. `submission_counts_refresh` recomputes all of one submission's keys from its raw
rows and applies the difference, so it is correct after any write and harmless when nothing changed; the
services call it in the transaction of each such write (submission_transition, a reanalysis).
`statistics_counts_rebuild` recomputes everything from the raw rows, for data written around the services.
"""

from collections import Counter
from collections.abc import Iterable, Iterator
from math import floor

from django.db import connection, transaction

from detection.models import Detection
from moderation.models import (
    Period,
    StatisticsCount,
    StatisticsDay,
    StatisticsDayMedian,
    StatisticsEntry,
    StatisticsKey,
    StatisticsLatency,
    Submission,
)

_DETECTION_FIELDS = ("id", "submission_id", "model_name", "model_version", "verdict", "latency_ms", "reused_from_id")
_SUBMISSION_FIELDS = ("created_at", "scenery", "suggested_scenery", "state", "verdict", "spot_check_share")
_ENTRY_FIELDS = (*StatisticsKey.KEY_FIELDS, "latency_ms")
_BATCH = 5000


def latency_bucket(latency_ms: float) -> float:
    """The histogram's bucket of a latency: to the millisecond below a second, to 10 ms below 10 s, to 100 ms
    beyond, so a median read from it is within half a bucket (0.5 ms or 0.5 %) of the exact one, and exact on
    whole milliseconds. floor(x + 0.5) rather than round(), since PostgreSQL and Python round halves apart."""
    step = 1 if latency_ms < 1000 else 10 if latency_ms < 10_000 else 100
    return float(floor(latency_ms / step + 0.5) * step)


def _entries(submission: dict, detections: list[dict]) -> Iterator[dict]:
    """The keys of one submission's detections (ordered oldest first, so the last of a model is the latest)."""
    latest = {d["model_name"]: d["id"] for d in detections}
    for d in detections:
        is_latest = latest[d["model_name"]] == d["id"]
        # A reused result's latency (0) is no inference time; only the latest result counts towards a median.
        timed = is_latest and d["reused_from_id"] is None
        yield {
            "detection_id": d["id"],
            "submission_id": d["submission_id"],
            "model_name": d["model_name"],
            "model_version": d["model_version"],
            "day": submission["created_at"].date(),
            "scenery": submission["scenery"],
            "suggested_scenery": submission["suggested_scenery"],
            "state": submission["state"],
            "routed": submission["verdict"],
            "spot_checked": submission["spot_check_share"] is not None,
            "verdict": d["verdict"],
            "latest": is_latest,
            "latency_ms": latency_bucket(d["latency_ms"]) if timed else None,
        }


def _periods(entry: dict) -> list[tuple[str, object]]:
    """The periods an upload day counts in: the day itself and its month."""
    return [(Period.DAY, entry["day"]), (Period.MONTH, entry["day"].replace(day=1))]


def _count_keys(entry: dict) -> list[tuple]:
    key = [entry[f] for f in StatisticsKey.KEY_FIELDS]
    return [(period, key[0], key[1], start, *key[3:]) for period, start in _periods(entry)]


def _latency_keys(entry: dict) -> list[tuple]:
    """The histogram rows a result counts in (see StatisticsLatency): none when left out of the medians."""
    if entry["latency_ms"] is None:
        return []
    model, latency = entry["model_name"], entry["latency_ms"]
    return [
        (model, period, start, scenery_by, scenery, latency)
        for period, start in _periods(entry)
        for scenery_by, scenery in (("", ""), ("declared", entry["scenery"]), ("suggested", entry["suggested_scenery"]))
    ]


def _day_key(entry: dict) -> tuple:
    return tuple(entry[f] for f in StatisticsDay.COUNTER_FIELDS)


def _deltas() -> dict[type, Counter]:
    return {StatisticsCount: Counter(), StatisticsDay: Counter(), StatisticsLatency: Counter()}


def _tally(entries: Iterable[dict], sign: int, deltas: dict[type, Counter]) -> None:
    for entry in entries:
        for key in _count_keys(entry):
            deltas[StatisticsCount][key] += sign
        deltas[StatisticsDay][_day_key(entry)] += sign
        for key in _latency_keys(entry):
            deltas[StatisticsLatency][key] += sign


def _pooled_days(latencies: Iterable[tuple]) -> set[tuple[str, object]]:
    """The (model, day) pairs whose pooled daily histogram the latency keys touch."""
    return {
        (model, day) for model, period, day, scenery_by, _, _ in latencies if period == Period.DAY and not scenery_by
    }


def median(histogram: Counter) -> float | None:
    """The median of a histogram's values, as statistics.median of the values one by one would give it (and
    as moderation.reporting's SQL picks it)."""
    total = sum(histogram.values())
    if not total:
        return None
    middle = sorted({(total - 1) // 2, total // 2})
    found, seen = [], 0
    for value in sorted(v for v, n in histogram.items() if n):
        seen += histogram[value]
        while middle and middle[0] < seen:
            found.append(value)
            middle.pop(0)
    return sum(found) / len(found)


def _day_medians_refresh(pairs: set[tuple[str, object]]) -> None:
    """Recompute the stored median of each (model, day) from its pooled histogram. The median's row is locked
    first, so of two writers of one day the second reads the histogram with the first one's counts in it."""
    for model_name, day in sorted(pairs):
        StatisticsDayMedian.objects.get_or_create(model_name=model_name, day=day)
        row = StatisticsDayMedian.objects.select_for_update().get(model_name=model_name, day=day)
        histogram = Counter(
            dict(
                StatisticsLatency.objects.filter(
                    model_name=model_name, period=Period.DAY, day=day, scenery_by="", n__gt=0
                ).values_list("latency_ms", "n")
            )
        )
        row.median_latency_ms = median(histogram)
        row.save(update_fields=["median_latency_ms"])


def _add(model, fields: tuple[str, ...], deltas: Counter) -> None:
    """Add each delta to its counter row, creating missing rows; in key order, so two writers that touch the
    same rows lock them in the same order and never deadlock."""
    rows = sorted((key, n) for key, n in deltas.items() if n)
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f) for f in (*fields, "n"))
    conflict = ", ".join(connection.ops.quote_name(f) for f in fields)
    placeholders = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(batch))} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET n = {table}.n + EXCLUDED.n",
                [value for key, n in batch for value in (*key, n)],
            )


def submission_counts_refresh(*, submission_id: int) -> None:
    """Bring the counters in step with one submission and its detections, in the caller's transaction.

    Locks the submission row, so two writers of one submission take back and add its counts one after the other.
    After a detection or the submission was deleted it takes back what they were counted as.
    """
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).values(*_SUBMISSION_FIELDS).first()
        detections = list(
            Detection.objects.filter(submission_id=submission_id)
            .order_by("created_at", "id")
            .values(*_DETECTION_FIELDS)
        )
        # A deleted submission counts nothing any more.
        new = list(_entries(submission, detections)) if submission else []
        old = list(StatisticsEntry.objects.filter(submission_id=submission_id).values("detection_id", *_ENTRY_FIELDS))
        by_detection = {e["detection_id"]: e for e in old}
        changed = [e for e in new if by_detection.pop(e["detection_id"], None) != _comparable(e)]
        if not changed and not by_detection:
            return
        deltas = _deltas()
        _tally(old, -1, deltas)
        _tally(new, +1, deltas)
        for model, changes in deltas.items():
            _add(model, model.COUNTER_FIELDS, changes)
        _day_medians_refresh(_pooled_days(key for key, n in deltas[StatisticsLatency].items() if n))
        StatisticsEntry.objects.filter(submission_id=submission_id).delete()
        StatisticsEntry.objects.bulk_create(StatisticsEntry(**e) for e in new)


def _comparable(entry: dict) -> dict:
    """An entry as the stored one reads back (without its submission id), to tell whether anything changed."""
    return {k: v for k, v in entry.items() if k != "submission_id"}


def statistics_counts_rebuild() -> int:
    """Recompute every counter and entry from the submissions and detections; returns the detections counted.

    Holds a share lock on both raw tables (PostgreSQL) so no write lands between the read and the swap; the
    counters are replaced in one transaction, so readers see the old figures or the new ones, never a mix.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Submission._meta.db_table}, {Detection._meta.db_table} IN SHARE MODE")
        for model in (StatisticsEntry, StatisticsCount, StatisticsDay, StatisticsLatency, StatisticsDayMedian):
            model.objects.all().delete()
        deltas = _deltas()
        pending: list[StatisticsEntry] = []
        total = 0
        for submission, detections in _raw_by_submission():
            entries = list(_entries(submission, detections))
            _tally(entries, +1, deltas)
            pending.extend(StatisticsEntry(**e) for e in entries)
            if len(pending) >= _BATCH:
                StatisticsEntry.objects.bulk_create(pending)
                total += len(pending)
                pending = []
        StatisticsEntry.objects.bulk_create(pending)
        total += len(pending)
        for model, changes in deltas.items():
            _add(model, model.COUNTER_FIELDS, changes)
        histograms: dict[tuple, Counter] = {pair: Counter() for pair in _pooled_days(deltas[StatisticsLatency])}
        for key, n in deltas[StatisticsLatency].items():
            if (key[0], key[2]) in histograms and key[1] == Period.DAY and not key[3]:
                histograms[key[0], key[2]][key[5]] += n
        StatisticsDayMedian.objects.bulk_create(
            StatisticsDayMedian(model_name=model_name, day=day, median_latency_ms=median(histogram))
            for (model_name, day), histogram in histograms.items()
        )
    return total


def _raw_by_submission() -> Iterator[tuple[dict, list[dict]]]:
    """Each submission with detections and its detections oldest first, streamed in submission order."""
    rows = (
        Detection.objects.order_by("submission_id", "created_at", "id")
        .values(*_DETECTION_FIELDS, *(f"submission__{f}" for f in _SUBMISSION_FIELDS))
        .iterator(chunk_size=_BATCH)
    )
    current, submission, detections = None, None, []
    for row in rows:
        if row["submission_id"] != current:
            if detections:
                yield submission, detections
            current, detections = row["submission_id"], []
            submission = {f: row[f"submission__{f}"] for f in _SUBMISSION_FIELDS}
        detections.append({f: row[f] for f in _DETECTION_FIELDS})
    if detections:
        yield submission, detections
