import subprocess
import sys

import pytest
from django.urls import reverse

from moderation.models import State
from tests.conftest import login


@pytest.fixture
def flagged(contributor, submission_make, force_verdict):
    force_verdict("ai")
    return submission_make(contributor=contributor)


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db):
    response = client.get(reverse("queue"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_contributor_gets_404_on_another_contributors_submission(client, flagged, other_contributor):
    login(client, other_contributor)
    assert client.get(reverse("submission_detail", args=[flagged.pk])).status_code == 404
    assert client.get(reverse("submission_original", args=[flagged.pk])).status_code == 404


def test_a_contributor_gets_403_on_the_queue_decisions_heatmaps_and_requeue(client, flagged, contributor):
    login(client, contributor)
    assert client.get(reverse("queue")).status_code == 403
    post = {"outcome": "approve", "reason": "verified-photograph"}
    assert client.post(reverse("submission_decide", args=[flagged.pk]), post).status_code == 403
    heatmap = flagged.detections.get().heatmaps.get()
    assert client.get(reverse("heatmap_image", args=[heatmap.pk])).status_code == 403
    assert client.post(reverse("submission_requeue", args=[flagged.pk])).status_code == 403
    flagged.refresh_from_db()
    assert flagged.state == State.FLAGGED


def test_a_contributor_sees_only_their_own_submissions(
    client, flagged, contributor, other_contributor, submission_make
):
    mine = submission_make(contributor=other_contributor)
    login(client, other_contributor)
    listing = client.get(reverse("submission_list")).content.decode()
    assert f'data-id="{mine.pk}"' in listing
    assert f'data-id="{flagged.pk}"' not in listing


def test_a_moderator_cannot_upload(client, moderator):
    assert login(client, moderator).get(reverse("upload")).status_code == 403


def test_a_moderator_sees_the_queue_most_likely_ai_first(
    client, moderator, contributor, submission_make, force_verdict
):
    force_verdict("ai")
    low = submission_make(contributor=contributor, data=None)
    from moderation.models import Submission
    from tests.factories import image_bytes

    high = submission_make(contributor=contributor, data=image_bytes(seed=4))
    Submission.objects.filter(pk=low.pk).update(ai_probability=0.61)
    Submission.objects.filter(pk=high.pk).update(ai_probability=0.97)
    page = login(client, moderator).get(reverse("queue")).content.decode()
    assert page.index(f'href="/submissions/{high.pk}/"') < page.index(f'href="/submissions/{low.pk}/"')


def test_a_moderator_approves_from_the_detail_page_and_the_contributor_sees_the_outcome(
    client, moderator, contributor, flagged
):
    login(client, moderator)
    detail = client.get(reverse("submission_detail", args=[flagged.pk]))
    assert b"Grad-CAM" in detail.content
    heatmap = flagged.detections.get().heatmaps.get()
    assert client.get(reverse("heatmap_image", args=[heatmap.pk])).status_code == 200
    response = client.post(
        reverse("submission_decide", args=[flagged.pk]),
        {"outcome": "reject", "reason": "ai-generated", "note": "Hands have seven fingers"},
    )
    assert response.status_code == 302
    client.logout()
    login(client, contributor)
    listing = client.get(reverse("submission_list")).content.decode()
    assert "AI-generated image: Hands have seven fingers" in listing
    assert "Rejected" in listing


def test_a_decision_with_a_reason_that_does_not_fit_is_not_applied(client, moderator, flagged):
    login(client, moderator)
    client.post(reverse("submission_decide", args=[flagged.pk]), {"outcome": "approve", "reason": "ai-generated"})
    flagged.refresh_from_db()
    assert flagged.state == State.FLAGGED


def test_a_platform_admin_sees_everyones_submissions(client, platform_admin, flagged):
    page = login(client, platform_admin).get(reverse("submission_list")).content.decode()
    assert f'data-id="{flagged.pk}"' in page
    assert client.get(reverse("submission_detail", args=[flagged.pk])).status_code == 200


def test_web_processes_never_import_torch_or_tensorflow():
    code = (
        "import django, sys; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import moderation.views, moderation.tasks, detection.tasks, detection.services, detection.selectors;"
        "import portal.wsgi;"
        "sys.exit(1 if {'torch', 'tensorflow', 'keras'} & set(sys.modules) else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={"DJANGO_SETTINGS_MODULE": "portal.settings"}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr or "torch or tensorflow was imported by a web module"
