"""Contributors never see the detector's scores (an oracle for tuning an image past it) nor what a failure
looked like on the server: not in the API, not on the pages, not in the audit trail as they read it, and they
cannot read scores back by filtering. CONTRIBUTORS_SEE_SCORES lets them see scores; reviewers see everything."""

import pytest
from django.urls import reverse

from moderation import analysis
from moderation.models import State, Submission
from moderation.selectors import CONTRIBUTOR_FAILURE_REASON
from tests.conftest import login
from tests.test_api import SUBMISSIONS, api_as, png_with_generator_parameters, submission_in

SERVER_FAILURE = "FileNotFoundError: [Errno 2] No such file or directory: '/srv/portal/var/media/originals/ab/x.jpg'"


@pytest.fixture
def analysed(contributor, submission_make, force_verdict):
    """Flagged by a real run of the tiny model; the metadata rule's finding is in its audit reason too."""
    force_verdict("ai")
    return submission_make(contributor=contributor, data=png_with_generator_parameters())


@pytest.fixture
def failed(contributor):
    submission = submission_in(State.ANALYSING, contributor=contributor, seed=5)
    analysis.analysis_fail(submission_id=submission.pk, reason=SERVER_FAILURE)
    return Submission.objects.get(pk=submission.pk)


def api_texts(client, submission: Submission) -> tuple[dict, dict, str]:
    detail = client.get(f"{SUBMISSIONS}{submission.pk}/")
    listing = client.get(SUBMISSIONS)
    assert detail.status_code == listing.status_code == 200
    [row] = [r for r in listing.json()["results"] if r["id"] == submission.pk]
    return detail.json(), row, detail.content.decode() + listing.content.decode()


def page_texts(client, user, submission: Submission) -> str:
    login(client, user)
    pages = [
        client.get(reverse("submission_detail", args=[submission.pk])),
        client.get(reverse("submission_list")),
        client.get(reverse("submission_statuses"), {"ids": str(submission.pk)}),
    ]
    assert {page.status_code for page in pages} == {200}
    return "".join(page.content.decode() for page in pages)


def test_a_contributor_sees_no_score_or_verdict_in_the_api_or_the_pages_or_the_audit_trail(
    client,
    contributor,
    analysed,
):
    detail, row, text = api_texts(api_as(contributor), analysed)
    assert not {"ai_probability", "verdict"} & (detail.keys() | row.keys())
    assert [e["reason"] for e in detail["audit_trail"] if e["action"] == "analysed"] == [""]
    score = f"{analysed.ai_probability:.3f}"
    assert "probability" not in text.lower() and score not in text
    pages = page_texts(client, contributor, analysed)
    assert "probability" not in pages.lower() and score not in pages


def test_a_moderator_still_sees_the_scores_and_the_analysis_reasons(client, moderator, analysed):
    detail, row, text = api_texts(api_as(moderator), analysed)
    assert detail["ai_probability"] == row["ai_probability"] == analysed.ai_probability
    assert detail["verdict"] == "ai"
    assert "AI probability" in text
    assert f"{analysed.ai_probability:.3f}" in page_texts(client, moderator, analysed)


def test_contributors_see_scores_where_the_setting_allows_it(client, contributor, analysed, settings):
    settings.CONTRIBUTORS_SEE_SCORES = True
    detail, row, _ = api_texts(api_as(contributor), analysed)
    assert detail["ai_probability"] == row["ai_probability"] == analysed.ai_probability
    assert "AI probability" in next(e["reason"] for e in detail["audit_trail"] if e["action"] == "analysed")
    assert f"{analysed.ai_probability:.3f}" in page_texts(client, contributor, analysed)
    assert api_as(contributor).get(SUBMISSIONS, {"ordering": "-ai_probability"}).status_code == 200


def test_a_contributor_is_told_a_generic_failure_reason_and_a_moderator_the_real_one(
    client, contributor, moderator, failed
):
    detail, _, text = api_texts(api_as(contributor), failed)
    assert detail["failure_reason"] == CONTRIBUTOR_FAILURE_REASON
    assert [e["reason"] for e in detail["audit_trail"] if e["action"] == "failed"] == [CONTRIBUTOR_FAILURE_REASON]
    pages = page_texts(client, contributor, failed)
    for seen in (text, pages):
        assert "/srv/portal" not in seen and "FileNotFoundError" not in seen
    assert CONTRIBUTOR_FAILURE_REASON in pages

    detail, _, _ = api_texts(api_as(moderator), failed)
    assert detail["failure_reason"] == SERVER_FAILURE
    assert "FileNotFoundError" in page_texts(client, moderator, failed)
    assert Submission.objects.get(pk=failed.pk).failure_reason == SERVER_FAILURE  # redacted for reading only


@pytest.mark.parametrize(
    "query",
    [
        {"min_probability": 0.5},
        {"max_probability": 0.5},
        {"verdict": "ai"},
        {"model": "tiny_mobilenet"},
        {"ordering": "-ai_probability"},
        {"ordering": "ai_probability"},
    ],
)
def test_a_contributor_may_not_filter_or_order_by_score(contributor, moderator, query):
    submission_in(State.FLAGGED, contributor=contributor, verdict="ai", ai_probability=0.9)
    refused = api_as(contributor).get(SUBMISSIONS, query)
    assert refused.status_code == 400
    assert "for moderators" in next(iter(refused.json().values()))[0]
    assert api_as(moderator).get(SUBMISSIONS, query).status_code == 200
    assert api_as(contributor).get(SUBMISSIONS, {"state": "flagged"}).status_code == 200
