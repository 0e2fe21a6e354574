"""The statistics counters: kept in step by the services as uploads are analysed, decided, appealed and
reanalysed, equal to the ones rebuilt from the raw rows, and giving the figures the straightforward computation
(tests.statistics_reference, the implementation before the counters) gives."""

import statistics as pystats
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from django.core.management import call_command

from detection.models import Detection
from moderation import counters, reporting, services
from moderation.analysis import reanalysis_run
from moderation.models import (
    State,
    StatisticsCount,
    StatisticsDay,
    StatisticsDayMedian,
    StatisticsEntry,
    StatisticsLatency,
    Submission,
)
from tests import statistics_reference as reference
from tests.factories import image_bytes
from tests.test_statistics import detection_row, known_figures, submission_row  # noqa: F401 (a fixture)

DAY_1 = date(2026, 3, 2)
DAY_2 = date(2026, 3, 9)  # the next week, so the live figures have two weeks
DAY_3 = date(2026, 4, 2)  # the next month, so ranges read whole months from the monthly rows and ends from days


def _counted() -> tuple:
    """What the counters hold now, zero rows left out (a count that fell back to zero adds nothing)."""
    counts = Counter(
        {
            tuple(row[f] for f in StatisticsCount.COUNTER_FIELDS): row["n"]
            for row in StatisticsCount.objects.filter(n__gt=0).values()
        }
    )
    latencies = Counter(
        {
            tuple(row[f] for f in StatisticsLatency.COUNTER_FIELDS): row["n"]
            for row in StatisticsLatency.objects.values()
        }
    )
    days = Counter(
        {tuple(row[f] for f in StatisticsDay.COUNTER_FIELDS): row["n"] for row in StatisticsDay.objects.values()}
    )
    medians = {
        (model_name, day): median
        for model_name, day, median in StatisticsDayMedian.objects.values_list("model_name", "day", "median_latency_ms")
        if median is not None
    }
    entries = sorted(StatisticsEntry.objects.values_list(), key=lambda row: row[-3:])
    return counts, +latencies, +days, medians, entries


def _same(figures, expected) -> bool:
    """Equal, but for a median latency, which the histogram gives within half a bucket of the exact one (equal on
    whole milliseconds, as in tests.test_statistics; the analyses here measure fractions of one)."""
    if isinstance(expected, dict):
        assert figures.keys() == expected.keys()
        for key, value in expected.items():
            if key == "median_latency_ms" and value is not None:
                assert figures[key] == pytest.approx(value, rel=0.005, abs=0.5)
            else:
                _same(figures[key], value)
    elif isinstance(expected, list):
        assert len(figures) == len(expected)
        for got, want in zip(figures, expected, strict=True):
            _same(got, want)
    else:
        assert figures == expected
    return True


def _on_day(submission: Submission, day: date) -> None:
    """Move an upload to another day, as if uploaded then (written around the services, so counted again)."""
    Submission.objects.filter(pk=submission.pk).update(created_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC))
    counters.submission_counts_refresh(submission_id=submission.pk)


@pytest.fixture
def portal_history(
    tiny_detector, contributor, other_contributor, moderator, second_moderator, submission_make, force_verdict, settings
):
    """A mix of everything that moves the figures, through the services: uploads flagged and cleared, spot
    checks, decisions both ways, an appeal that reverses a rejection and one still pending, reanalyses that
    make a newer version the latest, a second model's results and uploads with suggested sceneries."""
    uploads = []
    for seed, (verdict, scenery, spot) in enumerate(
        [
            ("ai", "forest", False),
            ("ai", "sea", False),
            ("uncertain", "forest", False),
            ("real", "forest", True),
            ("real", "sea", True),
            ("real", "street", False),
            ("ai", "glacier", False),
            ("real", "forest", False),
        ]
    ):
        force_verdict(verdict)
        settings.SPOT_CHECK_SHARE = 1.0 if spot else 0.0
        uploads.append(submission_make(contributor=contributor, data=image_bytes(seed=40 + seed), scenery=scenery))
    for upload in uploads[4:6]:
        _on_day(upload, DAY_2)
    for upload in uploads[6:]:
        _on_day(upload, DAY_3)
    for upload in uploads[:4]:
        _on_day(upload, DAY_1)

    def decide(upload: Submission, outcome: str, by=moderator) -> None:
        reason = "camera-evidence" if outcome == "approve" else "ai-generated"
        services.submission_decide(submission_id=upload.pk, moderator=by, outcome=outcome, reason_code=reason)

    decide(uploads[0], "reject")
    decide(uploads[1], "approve")
    decide(uploads[2], "reject")
    decide(uploads[3], "approve")
    decide(uploads[4], "reject")
    decide(uploads[6], "reject")
    # The contributor appeals two rejections: one reversed by another moderator, one still pending.
    reversed_appeal = services.appeal_create(submission_id=uploads[0].pk, contributor=contributor, message="Mine.")
    services.appeal_decide(
        appeal_id=reversed_appeal.pk, moderator=second_moderator, outcome="approve", reason_code="camera-evidence"
    )
    services.appeal_create(submission_id=uploads[2].pk, contributor=contributor, message="Really mine.")
    # Reanalyses: an older version's result becomes history once the current version has scored the upload.
    for upload in (uploads[1], uploads[5]):
        Detection.objects.filter(submission=upload).update(model_version="v-old", latency_ms=123)
        counters.submission_counts_refresh(submission_id=upload.pk)
        reanalysis_run(submission_id=upload.pk, model_name=tiny_detector)
    # A second model's results and uploads the scenery head saw differently, written as analysis leaves them.
    for upload in uploads[:5]:
        detection_row(submission=upload, model_name="m2", verdict="ai", latency_ms=900 + upload.pk)
    for n, (suggested, verdict, state) in enumerate(
        [("sea", "ai", State.REJECTED), ("", "real", State.APPROVED), ("forest", "ai", State.FLAGGED)], start=1
    ):
        row = submission_row(
            contributor=other_contributor,
            n=n,
            scenery="forest",
            suggested_scenery=suggested,
            state=state,
            verdict=verdict,
            ai_probability=0.5,
        )
        _on_day(row, DAY_2)
        detection_row(submission=row, model_name=tiny_detector, verdict=verdict)
    return uploads


def test_counters_kept_as_results_and_decisions_are_written_equal_the_ones_rebuilt_from_the_raw_rows(portal_history):
    kept = _counted()
    assert all(kept)
    assert counters.statistics_counts_rebuild() == Detection.objects.count()
    assert _counted() == kept


def test_a_deleted_result_is_taken_back_at_the_next_refresh_of_its_upload(portal_history, tiny_detector):
    reanalysed = portal_history[1]
    newest = reanalysed.detections.filter(model_name=tiny_detector).order_by("-created_at", "-id").first()
    Detection.objects.filter(pk=newest.pk).delete()
    counters.submission_counts_refresh(submission_id=reanalysed.pk)
    kept = _counted()
    counters.statistics_counts_rebuild()
    assert _counted() == kept
    assert _same(
        reporting.scenery_statistics(model_name=tiny_detector), reference.scenery_statistics(model_name=tiny_detector)
    )


def test_a_reversed_appeal_moves_the_upload_from_rejected_to_approved(portal_history, tiny_detector):
    figures = reporting.scenery_statistics(model_name=tiny_detector, date_to=DAY_1)["overall"]
    # Of the four first-day uploads: 0 approved on appeal, 1 approved, 2 under appeal (not final), 3 approved.
    assert (figures["submissions"], figures["approved"], figures["rejected"]) == (4, 3, 0)


@pytest.mark.parametrize("scenery_by", ["declared", "suggested"])
@pytest.mark.parametrize(
    "dates",
    [
        (None, None),
        (DAY_2, None),
        (None, DAY_1),
        (DAY_1, DAY_1),
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 2, 10), DAY_3),
        (date(2026, 3, 5), None),
        (None, date(2026, 3, 31)),
        (date(2026, 3, 1), date(2026, 4, 1)),
    ],
)
def test_every_figure_equals_the_straightforward_computation_from_every_detection(
    portal_history, tiny_detector, scenery_by, dates
):
    date_from, date_to = dates
    for model_name in (tiny_detector, "m2", "nobody"):
        arguments = {"date_from": date_from, "date_to": date_to, "model_name": model_name, "scenery_by": scenery_by}
        assert _same(reporting.scenery_statistics(**arguments), reference.scenery_statistics(**arguments))
        assert _same(reporting.daily_statistics(**arguments), reference.daily_statistics(**arguments))
        for scenery in ("forest", "sea", ""):
            assert _same(
                reporting.daily_statistics(**arguments, scenery=scenery),
                reference.daily_statistics(**arguments, scenery=scenery),
            )
        assert reporting.live_statistics(**arguments) == reference.live_statistics(**arguments)
    names = [tiny_detector, "m2"]
    assert _same(
        reporting.model_comparison(date_from=date_from, date_to=date_to, model_names=names),
        reference.model_comparison(date_from=date_from, date_to=date_to, model_names=names),
    )
    assert {tiny_detector, "m2"} <= set(reporting.model_names_seen())


@pytest.mark.usefixtures("known_figures")
def test_the_hand_computed_figures_equal_the_straightforward_computation_exactly():
    """Whole milliseconds: even the median latency is the exact one."""
    for scenery_by in ("declared", "suggested"):
        for model_name in ("m1", "m2"):
            arguments = {"model_name": model_name, "scenery_by": scenery_by}
            assert reporting.scenery_statistics(**arguments) == reference.scenery_statistics(**arguments)
            assert reporting.daily_statistics(**arguments) == reference.daily_statistics(**arguments)
            assert reporting.live_statistics(**arguments) == reference.live_statistics(**arguments)


def test_a_median_latency_is_read_from_buckets_exact_on_whole_milliseconds_and_within_half_a_bucket_otherwise(
    contributor,
):
    assert [counters.latency_bucket(x) for x in (0.4, 0.5, 41.0, 41.49, 999.4, 1234.0, 12_345.0)] == [
        0.0,
        1.0,
        41.0,
        41.0,
        999.0,
        1230.0,
        12_300.0,
    ]
    samples = {
        "one": [41.0],
        "two": [41.0, 50.0],
        "even with ties": [3.0, 1.0, 2.0, 2.0],
        "odd with ties": [7.0, 7.0, 9.0, 12.0, 12.0, 30.0, 30.0],
        "across buckets": [7.0, 7.0, 9.0, 12.0, 12.0, 30.0],
        "measured": [12.3, 47.8, 51.2, 260.6, 1834.0, 1840.2],
    }
    n = 0
    for model_name, values in samples.items():
        for latency in values:
            n += 1
            detection_row(submission=submission_row(contributor=contributor, n=n), model_name=model_name, verdict="ai",
                          latency_ms=latency)  # fmt: skip
    for model_name, values in samples.items():
        median = reporting.scenery_statistics(model_name=model_name)["overall"]["median_latency_ms"]
        assert median == pystats.median(counters.latency_bucket(v) for v in values)
        assert median == pytest.approx(pystats.median(values), rel=0.005, abs=0.5)
    assert reporting.scenery_statistics(model_name="none")["overall"]["median_latency_ms"] is None


def test_the_rebuild_command_counts_rows_written_around_the_services(contributor, capsys):
    submission = submission_row(contributor=contributor, n=1, state=State.REJECTED, verdict="ai")
    Detection.objects.create(
        submission=submission,
        model_name="m1",
        model_version="v1",
        ai_probability=0.9,
        verdict="ai",
        threshold_low=0.3,
        threshold_high=0.7,
        latency_ms=42,
    )
    assert reporting.scenery_statistics(model_name="m1")["overall"]["submissions"] == 0
    call_command("statistics_rebuild")
    assert "Counted 1 detections" in capsys.readouterr().out
    overall = reporting.scenery_statistics(model_name="m1")["overall"]
    assert (overall["submissions"], overall["rejected"], overall["median_latency_ms"]) == (1, 1, 42)
