import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from moderation import roles, selectors, services
from moderation.models import Decision, State, Submission
from tests.conftest import login
from tests.factories import UserFactory
from tests.test_statistics import submission_row


@pytest.fixture
def flagged(contributor):
    return submission_row(contributor=contributor, n=1, ai_probability=0.9, verdict="ai")


def test_the_first_moderator_to_open_an_item_holds_it_and_the_second_is_refused(flagged, moderator, second_moderator):
    assert services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    assert not services.submission_claim(submission_id=flagged.pk, moderator=second_moderator)
    flagged.refresh_from_db()
    assert flagged.claimed_by == moderator
    assert flagged.claimed_until > timezone.now() + services.CLAIM_DURATION - timedelta(seconds=5)


def test_a_held_item_is_not_offered_to_another_moderator_but_stays_in_its_holders_queue(
    flagged, moderator, second_moderator
):
    services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    assert list(selectors.review_queue(moderator=moderator)) == [flagged]
    assert list(selectors.review_queue(moderator=second_moderator)) == []
    assert selectors.queue_first(moderator=second_moderator) is None


def test_a_lapsed_claim_can_be_taken_over(flagged, moderator, second_moderator):
    services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    Submission.objects.filter(pk=flagged.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert services.submission_claim(submission_id=flagged.pk, moderator=second_moderator)
    assert list(selectors.review_queue(moderator=moderator)) == []


def test_renewing_ones_own_claim_extends_it(flagged, moderator):
    services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    Submission.objects.filter(pk=flagged.pk).update(claimed_until=timezone.now() + timedelta(seconds=5))
    assert services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    flagged.refresh_from_db()
    assert flagged.claimed_until > timezone.now() + timedelta(minutes=2)


def test_releasing_only_gives_up_ones_own_claim(flagged, moderator, second_moderator):
    services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    services.submission_release(submission_id=flagged.pk, moderator=second_moderator)
    flagged.refresh_from_db()
    assert flagged.claimed_by == moderator
    services.submission_release(submission_id=flagged.pk, moderator=moderator)
    flagged.refresh_from_db()
    assert (flagged.claimed_by, flagged.claimed_until) == (None, None)


def test_a_decided_item_cannot_be_claimed(flagged, moderator):
    Submission.objects.filter(pk=flagged.pk).update(state=State.APPROVED)
    assert not services.submission_claim(submission_id=flagged.pk, moderator=moderator)


def test_deciding_an_item_another_moderator_holds_is_refused_and_changes_nothing(flagged, moderator, second_moderator):
    services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    with pytest.raises(services.ClaimHeld, match="mona"):
        services.submission_decide(
            submission_id=flagged.pk, moderator=second_moderator, outcome="reject", reason_code="ai-generated"
        )
    flagged.refresh_from_db()
    assert flagged.state == State.FLAGGED
    assert not Decision.objects.exists()


def test_the_holders_decision_applies_and_frees_the_item(flagged, moderator):
    services.submission_claim(submission_id=flagged.pk, moderator=moderator)
    services.submission_decide(
        submission_id=flagged.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
    )
    flagged.refresh_from_db()
    assert (flagged.state, flagged.claimed_by, flagged.claimed_until) == (State.REJECTED, None, None)


def test_reading_the_item_page_claims_nothing(client, flagged, moderator):
    page = login(client, moderator).get(reverse("submission_detail", args=[flagged.pk]))
    assert page.context["claimable"] and 'id="approve-form"' in page.content.decode()
    flagged.refresh_from_db()
    assert (flagged.claimed_by, flagged.claimed_until) == (None, None)


def test_the_pages_first_heartbeat_claims_the_item_and_a_second_moderator_sees_who_holds_it(
    client, flagged, moderator, second_moderator
):
    login(client, moderator).get(reverse("submission_detail", args=[flagged.pk]))
    assert client.post(reverse("submission_claim", args=[flagged.pk])).json() == {"claimed": True}
    client.logout()
    second = login(client, second_moderator).get(reverse("submission_detail", args=[flagged.pk]))
    html = second.content.decode()
    assert not second.context["claimable"]
    assert "mona has this item open" in html
    assert 'id="approve-form"' not in html


def test_the_heartbeat_renews_the_holders_claim_and_answers_409_to_anyone_else(
    client, flagged, moderator, second_moderator
):
    login(client, moderator)
    assert client.post(reverse("submission_claim", args=[flagged.pk])).json() == {"claimed": True}
    client.logout()
    login(client, second_moderator)
    response = client.post(reverse("submission_claim", args=[flagged.pk]))
    assert response.status_code == 409
    decided = client.post(
        reverse("submission_decide", args=[flagged.pk]), {"outcome": "approve", "reason": "verified-photograph"}
    )
    assert decided.status_code == 302
    flagged.refresh_from_db()
    assert flagged.state == State.FLAGGED
    messages = [str(m) for m in client.get(decided.url).context["messages"]]
    assert any("being reviewed by mona" in m for m in messages)


def test_a_contributor_cannot_claim(client, flagged, contributor):
    assert login(client, contributor).post(reverse("submission_claim", args=[flagged.pk])).status_code == 403


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_moderators_racing_for_one_item_one_claim_and_one_decision_win():
    """Real concurrency: two threads, two database connections, released at the same instant."""
    contributor = UserFactory(role=roles.CONTRIBUTOR)
    moderators = [UserFactory(role=roles.MODERATOR) for _ in range(2)]
    item = submission_row(contributor=contributor, n=7, ai_probability=0.8, verdict="ai")
    start = threading.Barrier(2)

    def race(action) -> list:
        results = [None, None]

        def run(i: int) -> None:
            try:
                start.wait()
                results[i] = action(moderators[i])
            except Exception as exc:  # the loser's refusal is the result under test
                results[i] = exc
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    claims = race(lambda m: services.submission_claim(submission_id=item.pk, moderator=m))
    assert sorted(claims) == [False, True]
    Submission.objects.filter(pk=item.pk).update(claimed_by=None, claimed_until=None)

    decisions = race(
        lambda m: services.submission_decide(
            submission_id=item.pk, moderator=m, outcome="reject", reason_code="ai-generated"
        )
    )
    assert sum(isinstance(d, Decision) for d in decisions) == 1
    assert sum(isinstance(d, services.TransitionRefused) for d in decisions) == 1
    assert Decision.objects.filter(submission=item).count() == 1
