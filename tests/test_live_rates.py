"""Live error rates from moderators' decisions: spot checks of cleared uploads, post-stratified estimates with
confidence bounds, on the statistics page, in the API and CSV, and the model settings page's alert."""

import csv
import io

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from detection.core.metrics import Stratum, live_rates
from detection.selectors import model_card_get
from moderation import reporting, services
from moderation.models import State, Submission
from tests.conftest import login
from tests.decided import uploads_analysed
from tests.factories import image_bytes
from tests.test_statistics import detection_row, submission_row


def test_a_cleared_upload_is_drawn_for_a_spot_check_with_the_share_recorded(
    contributor, submission_make, force_verdict, settings
):
    settings.SPOT_CHECK_SHARE = 1.0
    force_verdict("real")
    drawn = submission_make(contributor=contributor)
    assert (drawn.state, drawn.spot_check_share) == (State.CLEARED, 1.0)
    force_verdict("ai")
    flagged = submission_make(contributor=contributor, data=image_bytes(seed=1), scenery="sea")
    assert flagged.state == State.FLAGGED and flagged.spot_check_share is None


def test_with_no_spot_check_share_a_cleared_upload_is_never_drawn(contributor, submission_make, force_verdict):
    force_verdict("real")
    cleared = submission_make(contributor=contributor)
    assert cleared.state == State.CLEARED and cleared.spot_check_share is None


def test_spot_checks_wait_in_their_own_queue_tab_and_are_decided_like_flagged_items(
    client, contributor, moderator, submission_make, force_verdict, settings
):
    settings.SPOT_CHECK_SHARE = 1.0
    force_verdict("real")
    spot = submission_make(contributor=contributor)
    login(client, moderator)
    flagged_tab = client.get(reverse("queue"))
    assert f'data-id="{spot.pk}"' not in flagged_tab.content.decode()
    spot_tab = client.get(reverse("queue"), {"tab": "spot_check"})
    assert f'data-id="{spot.pk}"' in spot_tab.content.decode()
    assert spot_tab.context["tab_counts"] == {"flagged": 0, "spot_check": 1}

    assert 'id="spot-check-badge"' in client.get(reverse("submission_detail", args=[spot.pk])).content.decode()
    api = APIClient()
    api.force_authenticate(moderator)
    assert [row["id"] for row in api.get("/api/queue/", {"tab": "spot_check"}).json()["results"]] == [spot.pk]
    assert api.get("/api/queue/").json()["results"] == []

    services.submission_decide(
        submission_id=spot.pk, moderator=moderator, outcome="approve", reason_code="camera-evidence"
    )
    assert client.get(reverse("queue"), {"tab": "spot_check"}).context["tab_counts"]["spot_check"] == 0


def _routed(*, contributor, n: int, verdict: str, spot_check: bool = False, model_version: str = "v1") -> Submission:
    """An analysed upload the way analysis leaves it: flagged or cleared by the model's verdict."""
    state = State.CLEARED if verdict == "real" else State.FLAGGED
    submission = submission_row(
        contributor=contributor,
        n=n,
        state=state,
        verdict=verdict,
        ai_probability=0.9 if verdict == "ai" else 0.1,
        spot_check_share=0.2 if spot_check else None,
    )
    detection_row(submission=submission, model_name="m1", verdict=verdict, model_version=model_version)
    return submission


def _decide(submission: Submission, moderator, outcome: str) -> None:
    reason = "camera-evidence" if outcome == "approve" else "ai-generated"
    services.submission_decide(submission_id=submission.pk, moderator=moderator, outcome=outcome, reason_code=reason)


def test_live_rates_come_from_final_decisions_spot_checks_and_an_appeal_that_reverses_a_rejection(
    contributor, moderator, second_moderator
):
    flagged = [_routed(contributor=contributor, n=n, verdict="ai") for n in range(1, 6)]
    cleared = [_routed(contributor=contributor, n=n, verdict="real", spot_check=n <= 12) for n in range(10, 20)]
    for submission, outcome in zip(flagged[:3], ["reject", "reject", "approve"], strict=True):
        _decide(submission, moderator, outcome)
    _decide(flagged[3], moderator, "reject")  # appealed below; flagged[4] stays undecided
    appeal = services.appeal_create(submission_id=flagged[3].pk, contributor=contributor, message="My photo.")
    _decide(cleared[0], moderator, "approve")  # spot checks: one genuine, one AI the model let through
    _decide(cleared[1], moderator, "reject")
    _decide(cleared[5], moderator, "approve")  # opened by choice, not drawn: no random sample, left out

    # The appeal is pending: its rejection is not final, so it counts for nothing yet.
    pending = reporting.live_statistics(model_name="m1")["overall"]
    expected = live_rates(
        [
            Stratum(population=len(flagged), real_flagged=1, ai_flagged=2),
            Stratum(population=len(cleared), real_cleared=1, ai_cleared=1),
        ]
    )
    assert pending["false_flag_rate"] == pytest.approx(expected["false_flag"]["rate"])
    assert (pending["decided"], pending["spot_checked"]) == (5, 3)

    services.appeal_decide(
        appeal_id=appeal.pk, moderator=second_moderator, outcome="approve", reason_code="camera-evidence"
    )
    live = reporting.live_statistics(model_name="m1")
    overall = live["overall"]
    # By hand: each decided flagged upload stands for 5/4 flagged ones, each spot check for 10/2 cleared ones.
    real_flagged, real_cleared = 2 * len(flagged) / 4, 1 * len(cleared) / 2
    ai_flagged, ai_cleared = 2 * len(flagged) / 4, 1 * len(cleared) / 2
    assert overall["false_flag_rate"] == pytest.approx(real_flagged / (real_flagged + real_cleared))
    assert overall["recall"] == pytest.approx(ai_flagged / (ai_flagged + ai_cleared))
    assert overall["false_flag_low"] < overall["false_flag_rate"] < overall["false_flag_high"]
    assert overall["human_share"] == pytest.approx((len(flagged) + 3) / (len(flagged) + len(cleared)))
    assert (overall["real_decided"], overall["ai_decided"]) == (3, 3)
    forest = next(row for row in live["sceneries"] if row["scenery"] == "forest")
    assert forest["false_flag_rate"] == overall["false_flag_rate"]
    assert [w["week"].weekday() for w in live["weeks"]] == [0]
    assert [v["version"] for v in live["versions"]] == ["v1"]


def test_without_a_decided_spot_check_the_rates_are_left_undefined(contributor, moderator):
    flagged = _routed(contributor=contributor, n=1, verdict="ai")
    _routed(contributor=contributor, n=2, verdict="real")
    _decide(flagged, moderator, "approve")
    overall = reporting.live_statistics(model_name="m1")["overall"]
    assert overall["false_flag_rate"] is None and overall["unsampled"] == 1


@pytest.fixture
def live_figures(contributor, moderator):
    flagged = _routed(contributor=contributor, n=1, verdict="ai")
    spot = _routed(contributor=contributor, n=2, verdict="real", spot_check=True)
    _routed(contributor=contributor, n=3, verdict="real")
    _decide(flagged, moderator, "approve")
    _decide(spot, moderator, "approve")
    return reporting.live_statistics(model_name="m1")


def test_the_statistics_page_api_and_csv_show_the_same_live_rates(client, platform_admin, live_figures):
    login(client, platform_admin)
    page = client.get(reverse("statistics"), {"model_name": "m1"})
    assert page.status_code == 200
    assert page.context["live"]["overall"] == live_figures["overall"]
    assert 'id="live-by-scenery"' in page.content.decode()
    chart = page.context["chart_data"]
    assert chart["live_week_false_flag_rate"] == [live_figures["overall"]["false_flag_rate"]]

    api = client.get("/api/statistics/", {"model": "m1"}).json()["live"]
    assert api["overall"]["false_flag_rate"] == pytest.approx(live_figures["overall"]["false_flag_rate"])
    assert api["overall"]["false_flag_low"] == pytest.approx(live_figures["overall"]["false_flag_low"])

    response = client.get(reverse("statistics_csv"), {"model_name": "m1", "table": "live"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    overall = next(row for row in rows if row["by"] == "overall")
    assert float(overall["false_flag_rate"]) == pytest.approx(live_figures["overall"]["false_flag_rate"])
    assert {row["by"] for row in rows} == {"version", "scenery", "week", "overall"}


def _decided_in_bulk(*, contributor, model_name: str, version: str, flagged_real: int, cleared: int, spot: int):
    """Uploads decided as genuine: `flagged_real` flagged ones, and `spot` spot checks among `cleared`."""
    rows = [(0.9, "ai", State.APPROVED, False)] * flagged_real
    rows += [(0.1, "real", State.APPROVED, True)] * spot + [(0.1, "real", None, False)] * (cleared - spot)
    uploads_analysed(contributor=contributor, model_name=model_name, version=version, rows=rows)


def test_the_model_settings_page_alerts_only_when_the_lower_bound_exceeds_the_card_promise(
    client, platform_admin, contributor, tiny_detector
):
    card = model_card_get(name=tiny_detector)
    promised = card.thresholds.false_flag_target
    login(client, platform_admin)
    # A handful: the estimate is above the promise, but so few decisions cannot show it is.
    _decided_in_bulk(contributor=contributor, model_name=tiny_detector, version=card.version, flagged_real=1,
                     cleared=20, spot=5)  # fmt: skip
    check = reporting.live_false_flag_check(model_name=tiny_detector)
    assert check["figures"]["false_flag_rate"] > promised >= check["figures"]["false_flag_low"]
    page = client.get(reverse("model_settings"), {"model": tiny_detector})
    assert 'id="live-rates"' in page.content.decode()
    assert 'id="live-false-flag-alert"' not in page.content.decode()

    # Many decisions at a rate well above the promise: now even the lower bound is above it.
    _decided_in_bulk(contributor=contributor, model_name=tiny_detector, version=card.version, flagged_real=40,
                     cleared=400, spot=150)  # fmt: skip
    check = reporting.live_false_flag_check(model_name=tiny_detector)
    assert check["exceeded"] and check["figures"]["false_flag_low"] > promised
    page = client.get(reverse("model_settings"), {"model": tiny_detector})
    assert 'id="live-false-flag-alert"' in page.content.decode()
