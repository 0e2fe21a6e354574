import pytest
from django.urls import reverse

from audit.models import AuditEvent
from moderation import selectors, services
from moderation.models import Appeal, Decision, State, Submission
from tests.conftest import login
from tests.test_statistics import submission_row


@pytest.fixture
def rejected(contributor, moderator):
    submission = submission_row(contributor=contributor, n=1, ai_probability=0.95, verdict="ai")
    services.submission_decide(
        submission_id=submission.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
    )
    return submission


@pytest.fixture
def appeal(rejected, contributor):
    return services.appeal_create(submission_id=rejected.pk, contributor=contributor, message="Shot on my Nikon.")


def test_a_contributor_appeals_a_rejection_and_the_item_waits_in_the_appeals_queue(appeal, rejected, second_moderator):
    rejected.refresh_from_db()
    assert rejected.state == State.APPEALED
    assert appeal.message == "Shot on my Nikon."
    event = AuditEvent.objects.filter(submission=rejected).first()
    assert (event.action, event.from_state, event.to_state) == ("appealed", "rejected", "appealed")
    assert [a.pk for a in selectors.appeal_queue(moderator=second_moderator)] == [appeal.pk]


def test_the_moderator_who_rejected_cannot_decide_the_appeal(appeal, rejected, moderator):
    with pytest.raises(services.AppealRefused, match="another moderator"):
        services.appeal_decide(
            appeal_id=appeal.pk, moderator=moderator, outcome="approve", reason_code="camera-evidence"
        )
    rejected.refresh_from_db()
    assert rejected.state == State.APPEALED
    assert Decision.objects.filter(submission=rejected).count() == 1


def test_another_moderator_approves_on_appeal_and_both_decisions_are_kept(appeal, rejected, second_moderator):
    decision = services.appeal_decide(
        appeal_id=appeal.pk, moderator=second_moderator, outcome="approve", reason_code="camera-evidence", note="RAW"
    )
    rejected.refresh_from_db()
    assert rejected.state == State.APPROVED
    assert decision.stage == Decision.Stage.APPEAL
    stages = list(Decision.objects.filter(submission=rejected).values_list("stage", "outcome"))
    assert stages == [("review", "reject"), ("appeal", "approve")]


def test_an_appeal_is_possible_only_once(appeal, rejected, contributor, second_moderator):
    services.appeal_decide(
        appeal_id=appeal.pk, moderator=second_moderator, outcome="reject", reason_code="ai-generated"
    )
    with pytest.raises(services.AppealRefused, match="once"):
        services.appeal_create(submission_id=rejected.pk, contributor=contributor, message="Please look again.")
    assert Appeal.objects.count() == 1
    rejected.refresh_from_db()
    assert rejected.state == State.REJECTED


def test_an_appeal_is_decided_only_once(appeal, second_moderator, platform_admin):
    services.appeal_decide(
        appeal_id=appeal.pk, moderator=second_moderator, outcome="reject", reason_code="ai-generated"
    )
    with pytest.raises(services.TransitionRefused):
        services.appeal_decide(
            appeal_id=appeal.pk, moderator=platform_admin, outcome="approve", reason_code="camera-evidence"
        )
    assert Decision.objects.filter(stage="appeal").count() == 1


def test_only_the_uploader_can_appeal_and_only_a_rejection(rejected, other_contributor, contributor, moderator):
    with pytest.raises(services.AppealRefused, match="Only the contributor"):
        services.appeal_create(submission_id=rejected.pk, contributor=other_contributor, message="Mine!")
    approved = submission_row(contributor=contributor, n=2, state=State.FLAGGED, ai_probability=0.8, verdict="ai")
    services.submission_decide(
        submission_id=approved.pk, moderator=moderator, outcome="approve", reason_code="verified-photograph"
    )
    with pytest.raises(services.TransitionRefused, match="approved"):
        services.appeal_create(submission_id=approved.pk, contributor=contributor, message="Why?")
    with pytest.raises(services.AppealRefused, match="Say why"):
        services.appeal_create(submission_id=rejected.pk, contributor=contributor, message="   ")
    assert not Appeal.objects.exists()


def test_the_contributor_appeals_from_their_submissions_page(client, rejected, contributor):
    login(client, contributor)
    listing = client.get(reverse("submission_list")).content.decode()
    assert reverse("submission_appeal", args=[rejected.pk]) in listing
    response = client.post(reverse("submission_appeal", args=[rejected.pk]), {"message": "Taken at dawn, RAW kept."})
    assert response.status_code == 302
    rejected.refresh_from_db()
    assert rejected.state == State.APPEALED
    listing = client.get(reverse("submission_list")).content.decode()
    assert reverse("submission_appeal", args=[rejected.pk]) not in listing
    assert "Appeal pending" in listing


def test_another_contributor_gets_404_on_the_appeal_page(client, rejected, other_contributor):
    login(client, other_contributor)
    assert client.post(reverse("submission_appeal", args=[rejected.pk]), {"message": "x"}).status_code == 404
    assert Submission.objects.get(pk=rejected.pk).state == State.REJECTED


def test_the_rejecting_moderator_sees_no_appeal_form_and_another_decides_it(
    client, appeal, rejected, moderator, second_moderator
):
    page = login(client, moderator).get(reverse("submission_detail", args=[rejected.pk])).content.decode()
    assert "another moderator decides the appeal" in page
    assert reverse("appeal_decide", args=[appeal.pk]) not in page
    assert (
        client.post(
            reverse("appeal_decide", args=[appeal.pk]), {"outcome": "approve", "reason": "camera-evidence"}
        ).status_code
        == 302
    )
    assert Submission.objects.get(pk=rejected.pk).state == State.APPEALED
    client.logout()

    login(client, second_moderator)
    queue = client.get(reverse("appeal_queue")).content.decode()
    assert "Shot on my Nikon." in queue
    page = client.get(reverse("submission_detail", args=[rejected.pk])).content.decode()
    assert reverse("appeal_decide", args=[appeal.pk]) in page
    response = client.post(
        reverse("appeal_decide", args=[appeal.pk]),
        {"outcome": "approve", "reason": "camera-evidence", "note": "EXIF ok"},
    )
    assert response.url == reverse("appeal_queue")
    assert Submission.objects.get(pk=rejected.pk).state == State.APPROVED
    client.logout()
    outcome = login(client, rejected.contributor).get(reverse("submission_detail", args=[rejected.pk]))
    assert "Approved on appeal: Camera originals or provenance support it — EXIF ok" in outcome.content.decode()
