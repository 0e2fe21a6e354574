"""The scenery suggestion: recorded by analysis beside the declared scenery, and answered to the upload page
before the upload. A tiny head made here on the shipped CLIP encoder, not the shipped head."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detection.core.clip_probe import ClipEncoder
from detection.models import ModelSetting, Scenery
from detection.runtime import detector_get
from moderation import services
from moderation.lifecycle import Action
from moderation.tasks import submission_analyse
from tests.conftest import FORCED_BANDS, login
from tests.factories import image_bytes
from tests.scenery_heads import ENCODER_MODEL, SUGGESTED


def test_analysis_records_the_scenery_the_head_sees_beside_the_declared_one(
    client, contributor, moderator, submission_make, scenery_head
):
    submission = submission_make(contributor=contributor, data=scenery_head, scenery="forest")
    assert submission.ai_probability is not None
    assert (submission.scenery, submission.suggested_scenery) == ("forest", SUGGESTED)
    page = login(client, moderator).get(reverse("submission_detail", args=[submission.pk])).content.decode()
    assert f"(the image suggests {SUGGESTED})" in page


def test_with_the_clip_probe_active_the_suggestion_reuses_the_embedding_analysis_computed(
    settings, contributor, submission_make, scenery_head, monkeypatch
):
    settings.DETECTOR_DEFAULT_MODEL = ENCODER_MODEL
    low, high = FORCED_BANDS["real"]  # cleared: no heatmap rendered after the verdict
    ModelSetting.objects.create(
        model_name=ENCODER_MODEL, thresholds={s: {"low": low, "high": high} for s in Scenery.values}
    )
    detector_get(name=ENCODER_MODEL)  # loaded (and self-tested) before counting
    calls = []
    embed = ClipEncoder.embed
    monkeypatch.setattr(ClipEncoder, "embed", lambda self, batch: calls.append(len(batch)) or embed(self, batch))
    submission = submission_make(contributor=contributor, data=scenery_head, scenery="sea")
    assert submission.detections.get().model_name == ENCODER_MODEL
    assert submission.suggested_scenery == SUGGESTED
    assert calls == [1]


def test_a_cnn_batch_gets_its_suggestions_from_one_pass_of_the_heads_encoder(
    contributor, scenery_head, force_verdict, monkeypatch, django_capture_on_commit_callbacks
):
    force_verdict("real")  # cleared: no heatmap rendered after the verdicts
    detector_get(name=ENCODER_MODEL)  # loaded (and self-tested) before counting
    calls = []
    embed = ClipEncoder.embed
    monkeypatch.setattr(ClipEncoder, "embed", lambda self, batch: calls.append(len(batch)) or embed(self, batch))
    images = [scenery_head, *(image_bytes(seed=seed, size=(320, 240)) for seed in (11, 12, 13))]
    waiting = [
        services.submission_transition(
            submission_id=services.submission_create(
                contributor=contributor, stream=io.BytesIO(data), original_name=f"{i}.jpg", scenery="sea"
            ).pk,
            action=Action.QUEUE,
        )
        for i, data in enumerate(images)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        submission_analyse.apply(args=[waiting[0].pk])
    assert calls == [4]
    for submission in waiting:
        submission.refresh_from_db()
    assert waiting[0].suggested_scenery == SUGGESTED
    assert all(
        submission.suggested_scenery in Scenery.values or submission.suggested_scenery == "other"
        for submission in waiting
    )


def test_without_a_head_analysis_records_no_suggestion(contributor, submission_make, tiny_detector):
    submission = submission_make(contributor=contributor, scenery="forest")
    assert submission.ai_probability is not None
    assert submission.suggested_scenery == ""


def test_the_upload_page_is_told_the_suggested_scenery_before_the_upload(client, contributor, scenery_head):
    login(client, contributor)
    answer = client.post(
        reverse("scenery_suggestion"), {"image": SimpleUploadedFile("a.jpg", scenery_head, content_type="image/jpeg")}
    )
    assert answer.status_code == 200
    assert answer.json() == {"scenery": SUGGESTED, "label": SUGGESTED.capitalize()}
    assert not contributor.submissions.exists()  # asking stores nothing


def test_the_suggestion_endpoint_refuses_what_the_upload_would_refuse_and_answers_null_without_a_head(
    client, contributor, tiny_detector
):
    login(client, contributor)
    url = reverse("scenery_suggestion")
    refused = client.post(url, {"image": SimpleUploadedFile("a.jpg", b"not an image", content_type="image/jpeg")})
    assert refused.status_code == 400 and "image" in refused.json()
    photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")
    assert client.post(url, {"image": photo}).json() == {"scenery": None, "label": None}


def test_only_contributors_may_ask_for_a_suggestion(client, moderator, scenery_head):
    login(client, moderator)
    photo = SimpleUploadedFile("a.jpg", scenery_head, content_type="image/jpeg")
    assert client.post(reverse("scenery_suggestion"), {"image": photo}).status_code == 403
