import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from detection.models import Detection
from moderation import counters, reporting, services
from moderation.models import State, Submission
from tests.conftest import login

DAY_1 = date(2026, 3, 2)
DAY_2 = date(2026, 3, 3)
# (scenery, day, model verdict, final state, latency ms, reused) and what each row means against moderators.
ROWS = [
    ("forest", DAY_1, "ai", State.REJECTED, 100, False),  # true positive
    ("forest", DAY_1, "uncertain", State.REJECTED, 200, False),  # true positive: uncertain also flags
    ("forest", DAY_1, "ai", State.APPROVED, 300, False),  # false positive
    ("forest", DAY_1, "real", State.REJECTED, 400, False),  # false negative
    ("forest", DAY_2, "real", State.APPROVED, 0, True),  # true negative; reused, so no latency
    ("forest", DAY_2, "ai", State.FLAGGED, 500, False),  # undecided: volume and flag rate only
    ("sea", DAY_2, "ai", State.REJECTED, 50, False),  # true positive
    ("sea", DAY_2, "real", State.CLEARED, 70, False),  # undecided
]


def submission_row(*, contributor, n: int, scenery: str = "forest", state: str = State.FLAGGED, **fields) -> Submission:
    """A submission row without a file or an analysis run, for tests about figures and listings."""
    return Submission.objects.create(
        contributor=contributor,
        original=f"originals/{n:064x}.jpg",
        original_name=f"photo{n}.jpg",
        sha256=f"{n:064x}",
        image_format="JPEG",
        width=96,
        height=64,
        size_bytes=1000,
        scenery=scenery,
        state=state,
        state_changed_at=fields.pop("state_changed_at", timezone.now()),
        **fields,
    )


def detection_row(*, submission: Submission, model_name: str, verdict: str, latency_ms: float = 10, **fields):
    """A result row as analysis leaves it, counted in the statistics as analysis would count it."""
    detection = Detection.objects.create(
        submission=submission,
        model_name=model_name,
        model_version=fields.pop("model_version", "v1"),
        ai_probability=fields.pop("ai_probability", 0.9 if verdict == "ai" else 0.1),
        verdict=verdict,
        threshold_low=0.3,
        threshold_high=0.7,
        latency_ms=latency_ms,
        **fields,
    )
    counters.submission_counts_refresh(submission_id=submission.pk)
    return detection


@pytest.fixture
def known_figures(contributor):
    """The ROWS above for model m1, plus noise the figures must ignore (another model, an older version)."""
    for n, (scenery, day, verdict, state, latency, reused) in enumerate(ROWS, start=1):
        submission = submission_row(contributor=contributor, n=n, scenery=scenery, state=state)
        Submission.objects.filter(pk=submission.pk).update(
            created_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        )
        if n == 4:  # an earlier version that flagged it: only the latest version counts
            detection_row(submission=submission, model_name="m1", verdict="ai", model_version="v0")
        reused_from = Detection.objects.filter(model_name="m1").first() if reused else None
        detection_row(
            submission=submission, model_name="m1", verdict=verdict, latency_ms=latency, reused_from=reused_from
        )
        detection_row(submission=submission, model_name="m2", verdict="ai", latency_ms=1000)


def test_per_scenery_figures_match_the_hand_computed_answers(known_figures):
    figures = reporting.scenery_statistics(model_name="m1")
    forest = next(r for r in figures["rows"] if r["scenery"] == "forest")
    assert (forest["submissions"], forest["flagged"], forest["approved"], forest["rejected"]) == (6, 4, 2, 3)
    assert forest["flag_rate"] == pytest.approx(4 / 6)
    assert (forest["true_positives"], forest["false_positives"], forest["false_negatives"]) == (2, 1, 1)
    assert forest["precision"] == pytest.approx(2 / 3)
    assert forest["recall"] == pytest.approx(2 / 3)
    assert forest["f1"] == pytest.approx(2 / 3)
    assert forest["median_latency_ms"] == 300  # of 100, 200, 300, 400, 500: the reused 0 is left out
    sea = next(r for r in figures["rows"] if r["scenery"] == "sea")
    assert (sea["submissions"], sea["flag_rate"], sea["precision"], sea["recall"], sea["f1"]) == (2, 0.5, 1, 1, 1)
    assert sea["median_latency_ms"] == 60


def test_the_overall_row_pools_every_scenery(known_figures):
    overall = reporting.scenery_statistics(model_name="m1")["overall"]
    assert (overall["submissions"], overall["flagged"], overall["approved"], overall["rejected"]) == (8, 5, 2, 4)
    assert overall["flag_rate"] == pytest.approx(5 / 8)
    assert overall["precision"] == pytest.approx(3 / 4)
    assert overall["recall"] == pytest.approx(3 / 4)
    assert overall["f1"] == pytest.approx(3 / 4)
    assert overall["median_latency_ms"] == 200  # median of 50, 70, 100, 200, 300, 400, 500


def test_a_scenery_without_submissions_has_zero_counts_and_no_ratios(known_figures):
    glacier = next(r for r in reporting.scenery_statistics(model_name="m1")["rows"] if r["scenery"] == "glacier")
    assert glacier["submissions"] == 0
    assert glacier["flag_rate"] is None and glacier["f1"] is None and glacier["median_latency_ms"] is None


def test_each_model_is_judged_on_its_own_verdicts(known_figures):
    m2 = reporting.scenery_statistics(model_name="m2")["overall"]
    # m2 flags all eight: every rejected item is caught, every approved one is a false positive.
    assert (m2["flagged"], m2["precision"], m2["recall"]) == (8, pytest.approx(4 / 6), 1.0)
    side_by_side = reporting.model_comparison(model_names=["m1", "m2"])
    assert [m["model_name"] for m in side_by_side] == ["m1", "m2"]
    assert side_by_side[0]["precision"] == pytest.approx(3 / 4)


def test_figures_per_day_and_a_date_range(known_figures):
    days = reporting.daily_statistics(model_name="m1")["days"]
    assert [d["day"] for d in days] == [DAY_1, DAY_2]
    assert (days[0]["submissions"], days[0]["flagged"], days[0]["precision"]) == (4, 3, pytest.approx(2 / 3))
    assert (days[1]["submissions"], days[1]["flagged"], days[1]["precision"], days[1]["recall"]) == (4, 2, 1, 1)
    later = reporting.scenery_statistics(model_name="m1", date_from=DAY_2)["overall"]
    assert later["submissions"] == 4
    before = reporting.scenery_statistics(model_name="m1", date_to=DAY_1 - timedelta(days=1))["overall"]
    assert before["submissions"] == 0
    sea_days = reporting.daily_statistics(model_name="m1", scenery="sea")["days"]
    assert [(d["day"], d["submissions"]) for d in sea_days] == [(DAY_2, 2)]


def test_without_a_model_name_the_active_model_is_used(known_figures, settings):
    settings.DETECTOR_DEFAULT_MODEL = "m2"
    assert reporting.scenery_statistics()["model_name"] == "m2"
    assert reporting.daily_statistics()["model_name"] == "m2"


def test_an_admin_sees_the_figures_and_charts_data_on_the_statistics_page(client, platform_admin, known_figures):
    page = login(client, platform_admin).get(reverse("statistics"), {"model_name": "m1"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="chart-data"' in html and "chart.umd.min.js" in html
    forest = page.context["by_scenery"]["rows"][1]
    assert forest["scenery"] == "forest" and forest["submissions"] == 6
    assert page.context["chart_data"]["days"] == ["2026-03-02", "2026-03-03"]


def test_the_csv_export_has_a_row_per_scenery_and_the_overall_row(client, platform_admin, known_figures):
    response = login(client, platform_admin).get(reverse("statistics_csv"), {"model_name": "m1"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_scenery = {r["scenery"]: r for r in rows}
    assert len(rows) == 8  # seven sceneries and overall
    assert by_scenery["overall"]["submissions"] == "8"
    assert float(by_scenery["forest"]["precision"]) == pytest.approx(2 / 3)
    assert by_scenery["glacier"]["precision"] == ""
    response = client.get(reverse("statistics_csv"), {"model_name": "m1", "table": "daily"})
    daily = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["day"] for r in daily] == ["2026-03-02", "2026-03-03"]


def test_a_moderator_cannot_see_statistics(client, moderator):
    login(client, moderator)
    assert client.get(reverse("statistics")).status_code == 403
    assert client.get(reverse("statistics_csv")).status_code == 403


def test_a_model_that_missed_every_ai_image_scores_f1_zero_not_undefined(contributor):
    # Rejected (AI) but cleared by the model, and approved (real) but flagged: nothing right, F1 is 0.
    for n, (verdict, state) in enumerate([("real", State.REJECTED), ("ai", State.APPROVED)], start=1):
        detection_row(
            submission=submission_row(contributor=contributor, n=n, state=state), model_name="m1", verdict=verdict
        )
    overall = reporting.scenery_statistics(model_name="m1")["overall"]
    assert (overall["precision"], overall["recall"], overall["f1"]) == (0, 0, 0)


def test_per_scenery_figures_group_by_the_declared_or_the_suggested_scenery(
    client, platform_admin, contributor, moderator
):
    """Every upload declared forest; the head saw sea in two of them and made no suggestion for one."""
    uploads = [("sea", "ai", "reject"), ("sea", "ai", "approve"), ("forest", "real", None), ("", "ai", "reject")]
    for n, (suggested, verdict, outcome) in enumerate(uploads, start=1):
        submission = submission_row(
            contributor=contributor,
            n=n,
            scenery="forest",
            suggested_scenery=suggested,
            state=State.FLAGGED if verdict == "ai" else State.CLEARED,
            verdict=verdict,
            ai_probability=0.9 if verdict == "ai" else 0.1,
        )
        detection_row(submission=submission, model_name="m1", verdict=verdict)
        if outcome:
            reason = "camera-evidence" if outcome == "approve" else "ai-generated"
            services.submission_decide(
                submission_id=submission.pk, moderator=moderator, outcome=outcome, reason_code=reason
            )

    declared = {r["scenery"]: r for r in reporting.scenery_statistics(model_name="m1")["rows"]}
    suggested = {r["scenery"]: r for r in reporting.scenery_statistics(model_name="m1", scenery_by="suggested")["rows"]}
    assert declared["forest"]["submissions"] == len(uploads) and declared["sea"]["submissions"] == 0
    assert "" not in declared
    sea = suggested["sea"]
    assert (sea["submissions"], sea["true_positives"], sea["false_positives"], sea["precision"]) == (2, 1, 1, 0.5)
    assert (suggested["forest"]["submissions"], suggested["forest"]["flagged"]) == (1, 0)
    assert (suggested[""]["label"], suggested[""]["rejected"]) == ("No suggestion", 1)
    live = {r["scenery"]: r for r in reporting.live_statistics(model_name="m1", scenery_by="suggested")["sceneries"]}
    assert (live["sea"]["real_decided"], live["sea"]["ai_decided"]) == (1, 1)

    login(client, platform_admin)
    page = client.get(reverse("statistics"), {"model_name": "m1", "scenery_by": "suggested"})
    assert {r["scenery"]: r["submissions"] for r in page.context["by_scenery"]["rows"]}["sea"] == 2
    api = client.get("/api/statistics/", {"model": "m1", "scenery_by": "suggested"}).json()
    assert api["scenery_by"] == "suggested"
    assert {r["scenery"]: r["submissions"] for r in api["sceneries"]}["sea"] == 2
    declared_api = client.get("/api/statistics/", {"model": "m1"}).json()
    assert {r["scenery"]: r["submissions"] for r in declared_api["sceneries"]}["sea"] == 0
