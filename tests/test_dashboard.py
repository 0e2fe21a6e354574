import html
import io
import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from audit.models import AuditEvent
from detection.models import Detection, Evidence, Heatmap, ModelSetting
from moderation import selectors, services
from moderation.models import Decision, State, Submission
from portal.celery import app as celery_app
from tests.conftest import login
from tests.factories import image_bytes
from tests.test_statistics import detection_row, submission_row
from tests.workers import broker_switched, port_free


def flagged_rows(contributor, count: int, start: int = 1) -> list[Submission]:
    return [
        submission_row(contributor=contributor, n=n, ai_probability=n / 1000, verdict="ai")
        for n in range(start, start + count)
    ]


def queue_ids(client, **params) -> list[int]:
    return [s.pk for s in client.get(reverse("queue"), params).context["page"]]


@pytest.fixture
def varied_queue(contributor, other_contributor):
    """Five flagged items that differ in exactly one filtered attribute each."""
    now = timezone.now()
    items = {
        "forest_ai": submission_row(contributor=contributor, n=1, scenery="forest", ai_probability=0.95, verdict="ai"),
        "sea_uncertain": submission_row(
            contributor=contributor, n=2, scenery="sea", ai_probability=0.55, verdict="uncertain"
        ),
        "old": submission_row(
            contributor=contributor, n=3, ai_probability=0.80, verdict="ai", state_changed_at=now - timedelta(days=3)
        ),
        "bobs": submission_row(contributor=other_contributor, n=4, ai_probability=0.70, verdict="ai"),
        "cleared": submission_row(
            contributor=contributor, n=5, state=State.CLEARED, ai_probability=0.1, verdict="real"
        ),
    }
    Submission.objects.filter(pk=items["old"].pk).update(created_at=now - timedelta(days=3))
    detection_row(submission=items["sea_uncertain"], model_name="resnet50", verdict="uncertain")
    return items


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["forest_ai", "old", "bobs", "sea_uncertain"]),
        ({"scenery": "sea"}, ["sea_uncertain"]),
        ({"verdict": "uncertain"}, ["sea_uncertain"]),
        ({"probability_min": "0.6", "probability_max": "0.9"}, ["old", "bobs"]),
        ({"model_name": "resnet50"}, ["sea_uncertain"]),
        ({"contributor": "bob"}, ["bobs"]),
        ({"date_to": "YESTERDAY"}, ["old"]),
        ({"ordering": "oldest"}, ["old", "forest_ai", "sea_uncertain", "bobs"]),
    ],
)
def test_the_queue_filters_and_orders_flagged_items(client, moderator, varied_queue, params, expected):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    params = {key: yesterday if value == "YESTERDAY" else value for key, value in params.items()}
    ids = queue_ids(login(client, moderator), **params)
    assert ids == [varied_queue[name].pk for name in expected]


def test_state_counts_are_shown_above_the_queue(client, moderator, varied_queue):
    page = login(client, moderator).get(reverse("queue"))
    counts = {value: n for value, _, n in page.context["counts"]}
    assert counts[State.FLAGGED] == 4 and counts[State.CLEARED] == 1 and counts[State.APPEALED] == 0
    assert 'data-count="flagged">4<' in page.content.decode()


def test_the_queue_page_costs_the_same_queries_for_five_or_fifty_items(
    client, moderator, contributor, django_assert_max_num_queries
):
    flagged_rows(contributor, 5)
    login(client, moderator)
    with django_assert_max_num_queries(12):
        client.get(reverse("queue"))
    flagged_rows(contributor, 45, start=100)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("queue"))
    assert len(page.context["page"].object_list) == 50


def queue_rows(contributor, count: int, *, start: int = 1, **fields) -> list[Submission]:
    """Flagged rows that tie on every ordering key but the id in threes and sevens, so a page boundary must be
    cut on the whole position."""
    base = timezone.now() - timedelta(hours=1)
    return [
        submission_row(
            contributor=contributor,
            n=n,
            verdict="ai",
            **{"ai_probability": (n // 3) / 1000, "state_changed_at": base + timedelta(seconds=n % 7), **fields},
        )
        for n in range(start, start + count)
    ]


def link(response, rel: str) -> str | None:
    found = re.search(rf'href="(\?[^"]*)" rel="{rel}"', response.content.decode())
    return reverse("queue") + html.unescape(found[1]) if found else None


@pytest.mark.parametrize("ordering", list(selectors.QUEUE_ORDERINGS))
def test_following_the_queue_pages_neither_repeats_nor_skips_an_item_while_others_decide_and_upload(
    client, moderator, second_moderator, contributor, ordering
):
    waiting = {s.pk for s in queue_rows(contributor, 120)}
    response = login(client, moderator).get(reverse("queue"), {"ordering": ordering})
    seen = [s.pk for s in response.context["page"]]
    # Between two page loads another moderator decides items of the first page, and new items are flagged both
    # ahead of the boundary (most likely AI, longest waiting) and behind it.
    for pk in seen[:5]:
        services.submission_decide(
            submission_id=pk, moderator=second_moderator, outcome="reject", reason_code="ai-generated"
        )
    ahead = queue_rows(
        contributor, 3, start=1000, ai_probability=0.99, state_changed_at=timezone.now() - timedelta(days=1)
    )
    behind = queue_rows(contributor, 3, start=2000, ai_probability=0.0, state_changed_at=timezone.now())
    while next_page := link(response, "next"):
        response = client.get(next_page)
        seen += [s.pk for s in response.context["page"]]

    assert len(seen) == len(set(seen)), "an item was shown twice"
    assert set(seen) == waiting | {s.pk for s in behind}, "an item was skipped"
    assert not set(seen) & {s.pk for s in ahead}  # behind the moderator's position: seen from the first page


def test_the_queue_page_goes_back_by_position_and_to_the_first_page_when_less_than_a_page_is_left(
    client, moderator, second_moderator, contributor
):
    queue_rows(contributor, 160)
    login(client, moderator)
    pages = [client.get(reverse("queue"))]
    for _ in range(2):
        pages.append(client.get(link(pages[-1], "next")))
    order = list(selectors.review_queue(moderator=moderator).values_list("pk", flat=True))
    assert [s.pk for s in client.get(link(pages[2], "prev")).context["page"]] == order[50:100]

    for submission in list(pages[0].context["page"])[:10]:  # the first page thins out meanwhile
        services.submission_decide(
            submission_id=submission.pk,
            moderator=second_moderator,
            outcome="approve",
            reason_code="verified-photograph",
        )
    back = client.get(link(pages[1], "prev"))
    assert [s.pk for s in back.context["page"]] == order[10:60]  # the first page, full
    assert link(back, "prev") is None


def test_the_submissions_page_does_not_query_per_row(client, contributor, moderator, django_assert_max_num_queries):
    for submission in flagged_rows(contributor, 30):
        services.submission_decide(
            submission_id=submission.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
        )
    login(client, contributor)
    with django_assert_max_num_queries(10):
        page = client.get(reverse("submission_list"))
    assert page.content.decode().count("AI-generated image") == 30


def test_the_audit_and_appeals_pages_do_not_query_per_row(
    client, contributor, moderator, second_moderator, django_assert_max_num_queries
):
    for submission in flagged_rows(contributor, 20):
        services.submission_decide(
            submission_id=submission.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
        )
        services.appeal_create(submission_id=submission.pk, contributor=contributor, message="Real photo.")
    login(client, second_moderator)
    with django_assert_max_num_queries(10):
        assert len(client.get(reverse("appeal_queue")).context["page"].object_list) == 20
    with django_assert_max_num_queries(10):
        assert len(client.get(reverse("audit_log")).context["page"].object_list) == 40  # a decision and an appeal each


def test_next_and_previous_follow_the_queue_order_and_skip_items_others_hold(contributor, moderator, second_moderator):
    low, middle, high = flagged_rows(contributor, 3)
    assert selectors.queue_neighbours(moderator=moderator, submission=middle) == (high.pk, low.pk)
    services.submission_claim(submission_id=low.pk, moderator=second_moderator)
    assert selectors.queue_neighbours(moderator=moderator, submission=middle) == (high.pk, None)
    assert selectors.queue_first(moderator=moderator, exclude_id=high.pk) == middle.pk


def test_after_a_decision_the_moderator_lands_on_the_next_item(client, contributor, moderator):
    first, second = flagged_rows(contributor, 2)
    login(client, moderator)
    response = client.post(
        reverse("submission_decide", args=[second.pk]), {"outcome": "approve", "reason": "verified-photograph"}
    )
    assert client.get(response.url).url == reverse("submission_detail", args=[first.pk])


def test_bulk_reject_applies_each_item_and_reports_the_refused_ones(client, contributor, moderator, second_moderator):
    free, decided, held = flagged_rows(contributor, 3)
    services.submission_decide(
        submission_id=decided.pk, moderator=second_moderator, outcome="approve", reason_code="verified-photograph"
    )
    services.submission_claim(submission_id=held.pk, moderator=second_moderator)
    login(client, moderator)
    response = client.post(
        reverse("queue_bulk_decide"),
        {"ids": [free.pk, decided.pk, held.pk], "outcome": "reject", "reason": "ai-generated", "note": "batch"},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert f"1 rejected: #{free.pk}" in messages
    assert any(f"#{decided.pk} is approved" in m for m in messages)
    assert any(f"#{held.pk} is being reviewed by max" in m for m in messages)
    states = dict(Submission.objects.values_list("pk", "state"))
    assert (states[free.pk], states[decided.pk], states[held.pk]) == ("rejected", "approved", "flagged")
    assert Decision.objects.get(submission=free).note == "batch"


def test_bulk_with_a_reason_that_does_not_fit_changes_nothing(client, contributor, moderator):
    [item] = flagged_rows(contributor, 1)
    login(client, moderator)
    client.post(reverse("queue_bulk_decide"), {"ids": [item.pk], "outcome": "approve", "reason": "ai-generated"})
    assert Submission.objects.get(pk=item.pk).state == State.FLAGGED


def test_the_submissions_page_polls_state_for_the_visible_ids_only_of_ones_own(
    client, contributor, other_contributor, moderator
):
    mine, decided = flagged_rows(contributor, 2)
    services.submission_decide(
        submission_id=decided.pk, moderator=moderator, outcome="reject", reason_code="ai-generated", note="fingers"
    )
    theirs = submission_row(contributor=other_contributor, n=50, state=State.ANALYSING)
    login(client, contributor)
    data = client.get(reverse("submission_statuses"), {"ids": f"{mine.pk},{decided.pk},{theirs.pk},x"}).json()
    rows = data["submissions"]
    assert set(rows) == {str(mine.pk), str(decided.pk)}
    assert rows[str(mine.pk)]["state"] == "flagged" and rows[str(mine.pk)]["appeal_url"] == ""
    assert rows[str(decided.pk)]["outcome"] == "AI-generated image: fingers"
    assert rows[str(decided.pk)]["appeal_url"] == reverse("submission_appeal", args=[decided.pk])


def jpeg_with_camera_exif() -> bytes:
    img = Image.new("RGB", (96, 64), (120, 140, 90))
    exif = img.getexif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS R5"  # Model
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_the_detail_page_shows_exif_every_model_and_the_conflict_with_the_detector(
    client, contributor, moderator, submission_make, force_verdict
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor, data=jpeg_with_camera_exif())
    Evidence.objects.create(
        submission=submission,
        kind="xmp",
        key="DigitalSourceType",
        value="trainedAlgorithmicMedia",
        suggests="ai",
        detail="IPTC says generated by AI",
    )
    detection_row(submission=submission, model_name="resnet50", verdict="real", ai_probability=0.12)
    page = login(client, moderator).get(reverse("submission_detail", args=[submission.pk]))
    html = page.content.decode()
    assert page.context["exif"]["Make"] == "Canon" and "EOS R5" in html
    assert "Camera EXIF present, but the detector says AI-generated." in page.context["conflicts"]
    assert "Declared as not made with AI, but the metadata says generative AI." in page.context["conflicts"]
    assert "resnet50" in html and "0.120" in html
    assert [c.layer for c in page.context["layers"]] == ["features.6", "features.13", "features.18"]
    assert page.context["layer"].layer == "features.13"
    assert 'id="opacity"' in html and 'data-key="h"' in html


def test_a_moderator_renders_a_missing_heatmap_layer_and_then_sees_it(
    client, contributor, moderator, submission_make, force_verdict, django_capture_on_commit_callbacks
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    detection = submission.detections.get()
    login(client, moderator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("heatmap_request", args=[detection.pk]), {"layer": "features.6"})
    assert Heatmap.objects.filter(detection=detection, layer="features.6").exists()
    page = client.get(response.url)
    assert page.context["layer"].layer == "features.6"
    assert page.context["missing_layers"] == ["features.18"]


def test_a_requested_layer_is_awaited_on_the_page_until_the_worker_has_rendered_it(
    client, contributor, moderator, submission_make, force_verdict
):
    from detection.services import heatmap_render

    force_verdict("ai")
    detection = submission_make(contributor=contributor).detections.get()
    login(client, moderator)
    # Not executed on commit here: the worker has not rendered it yet.
    response = client.post(reverse("heatmap_request", args=[detection.pk]), {"layer": "features.6"})
    assert "rendering=1" in response.url
    html = client.get(response.url).content.decode()
    assert 'id="heatmap-waiting" data-layer="features.6"' in html
    status_url = reverse("heatmap_layers_rendered", args=[detection.pk])
    assert client.get(status_url).json() == {"rendered": ["features.13"]}
    heatmap_render(detection_id=detection.pk, layer="features.6")
    assert client.get(status_url).json() == {"rendered": ["features.6", "features.13"]}
    assert "heatmap-waiting" not in client.get(response.url).content.decode()
    login(client, contributor)
    assert client.get(status_url).status_code == 403


def test_a_flagged_item_shows_its_default_heatmap_as_rendering_until_a_worker_has_made_it(
    client, contributor, moderator, submission_make, force_verdict
):
    from detection.services import heatmap_render

    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    detection = submission.detections.get()
    Heatmap.objects.all().delete()  # the verdict is recorded; its background heatmap has not run yet
    login(client, moderator)
    html = client.get(reverse("submission_detail", args=[submission.pk])).content.decode()
    assert 'id="heatmap-waiting" data-layer="features.13"' in html and 'id="heatmap"' not in html
    heatmap_render(detection_id=detection.pk, layer="features.13")
    html = client.get(reverse("submission_detail", args=[submission.pk])).content.decode()
    assert "heatmap-waiting" not in html and 'id="heatmap"' in html


def test_the_review_page_names_each_heatmap_by_its_models_method(
    client, contributor, moderator, submission_make, force_verdict, settings, tmp_path
):
    import json
    import shutil

    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    login(client, moderator)
    html = client.get(reverse("submission_detail", args=[submission.pk])).content.decode()
    assert "Grad-CAM · tiny_mobilenet · features.13" in html and "Occlusion map" not in html
    # The same item as a CLIP-probe kind of model saw it: that kind draws occlusion maps, at one layer.
    weights = tmp_path / "weights"
    shutil.copytree(settings.DETECTOR_WEIGHTS_DIR / "tiny_mobilenet", weights / "tiny_clip")
    card = json.loads((weights / "tiny_clip" / "card.json").read_text())
    (weights / "tiny_clip" / "card.json").write_text(json.dumps({**card, "name": "tiny_clip", "arch": "clip_probe"}))
    settings.DETECTOR_WEIGHTS_DIR = weights
    detection = submission.detections.get()
    Detection.objects.filter(pk=detection.pk).update(model_name="tiny_clip")
    Heatmap.objects.filter(detection=detection).update(layer="occlusion")
    page = client.get(reverse("submission_detail", args=[submission.pk]))
    html = page.content.decode()
    assert "Occlusion map · tiny_clip · occlusion" in html and "Grad-CAM" not in html
    assert [c.layer for c in page.context["layers"]] == ["occlusion"] and page.context["missing_layers"] == []


def test_the_sweeper_asks_again_for_heatmaps_of_flagged_items_that_never_got_one(
    contributor, submission_make, force_verdict, django_capture_on_commit_callbacks
):
    from moderation.analysis import heatmaps_resend_missing

    force_verdict("ai")
    flagged = submission_make(contributor=contributor)
    force_verdict("real")
    cleared = submission_make(contributor=contributor, data=image_bytes(seed=7))
    Heatmap.objects.all().delete()  # its message was lost with the broker
    assert heatmaps_resend_missing(older_than=timedelta(minutes=10)) == []  # still young: maybe just queued
    with django_capture_on_commit_callbacks(execute=True):
        asked = heatmaps_resend_missing(older_than=timedelta(0))
    assert asked == [flagged.detections.get().pk]
    assert flagged.detections.get().heatmaps.filter(layer="features.13").exists()
    assert not cleared.detections.get().heatmaps.exists()


def test_a_layer_still_rendering_shows_the_default_heatmap_meanwhile(
    client, contributor, moderator, submission_make, force_verdict
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    detection = submission.detections.get()
    page = login(client, moderator).get(
        reverse("submission_detail", args=[submission.pk]), {"detection": detection.pk, "layer": "features.18"}
    )
    assert page.status_code == 200
    assert page.context["layer"].layer == "features.13"
    assert '<option value="features.18" selected>' in page.content.decode()
    assert client.post(reverse("heatmap_request", args=[detection.pk]), {"layer": "fc"}).status_code == 302
    assert not Heatmap.objects.filter(layer="fc").exists()


def test_re_analysis_is_requested_from_the_detail_page(
    client, contributor, moderator, submission_make, force_verdict, django_capture_on_commit_callbacks
):
    force_verdict("real")
    submission = submission_make(contributor=contributor)
    Detection.objects.all().delete()
    login(client, moderator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submission_reanalyse", args=[submission.pk]), {"model_name": "tiny_mobilenet"})
    assert submission.detections.count() == 1
    client.post(reverse("submission_reanalyse", args=[submission.pk]), {"model_name": "no-such-model"})
    assert not AuditEvent.objects.filter(reason="with no-such-model").exists()


def test_the_audit_page_filters_by_actor_action_date_and_submission(client, contributor, moderator, second_moderator):
    first, second = flagged_rows(contributor, 2)
    services.submission_decide(
        submission_id=first.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
    )
    services.submission_decide(
        submission_id=second.pk, moderator=second_moderator, outcome="approve", reason_code="verified-photograph"
    )
    login(client, moderator)

    def events(**params) -> list[tuple]:
        page = client.get(reverse("audit_log"), params).context["page"]
        return [(e.submission_id, e.action, e.actor.username if e.actor else None) for e in page]

    assert events(actor="max") == [(second.pk, "decided", "max")]
    assert events(submission_id=first.pk, action="decided") == [(first.pk, "decided", "mona")]
    assert events(date_from=(timezone.now() + timedelta(days=1)).date().isoformat()) == []
    assert "decided" in client.get(reverse("audit_log")).context["form"].fields["action"].choices[1]


def test_a_contributor_cannot_see_the_audit_log_or_appeals_queue(client, contributor):
    login(client, contributor)
    assert client.get(reverse("audit_log")).status_code == 403
    assert client.get(reverse("appeal_queue")).status_code == 403


def test_navigation_links_follow_permissions(client, contributor, moderator, platform_admin):
    nav = {
        user.username: login(client, user).get(reverse("submission_list")).content.decode()
        for user in (contributor, moderator, platform_admin)
    }
    assert reverse("queue") not in nav["alice"] and reverse("audit_log") not in nav["alice"]
    assert reverse("appeal_queue") in nav["mona"] and reverse("statistics") not in nav["mona"]
    assert reverse("statistics") in nav["ada"] and reverse("model_settings") in nav["ada"]


def test_an_admin_activates_a_model_and_sets_thresholds_per_scenery(client, platform_admin, tiny_detector):
    login(client, platform_admin)
    page = client.get(reverse("model_settings"))
    assert page.context["selected"] == tiny_detector and page.context["card"].arch == "mobilenet_v2"
    assert "at most 2 % of genuine photos are flagged, with 95 % confidence" in page.content.decode()
    client.post(reverse("model_activate"), {"model_name": tiny_detector})
    assert ModelSetting.objects.get(is_active=True).model_name == tiny_detector
    client.post(
        reverse("model_thresholds", args=[tiny_detector]), {"forest_low": "0.2", "forest_high": "0.8", "sea_low": ""}
    )
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds == {"forest": {"low": 0.2, "high": 0.8}}
    refused = client.post(reverse("model_thresholds", args=[tiny_detector]), {"sea_low": "0.9", "sea_high": "0.1"})
    assert refused.status_code == 200 and refused.context["thresholds_form"].errors
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds == {"forest": {"low": 0.2, "high": 0.8}}
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model activated", "thresholds changed"} <= actions


def test_activating_a_model_without_weights_is_refused(client, platform_admin, tiny_detector):
    login(client, platform_admin)
    client.post(reverse("model_activate"), {"model_name": "resnet50"})
    assert not ModelSetting.objects.filter(is_active=True).exists()


def test_the_evaluation_report_is_served_to_admins_sandboxed_and_404_when_missing(
    client, platform_admin, moderator, tiny_detector, tiny_weights_dir
):
    login(client, platform_admin)
    report = tiny_weights_dir / tiny_detector / "report.html"
    report.unlink(missing_ok=True)
    assert client.get(reverse("model_report", args=[tiny_detector])).status_code == 404
    assert client.get(reverse("model_report", args=["..%2F..%2Fetc"])).status_code == 404
    report.write_text("<h1>Evaluation of tiny</h1>")
    try:
        response = client.get(reverse("model_report", args=[tiny_detector]))
        assert b"Evaluation of tiny" in b"".join(response.streaming_content)
        assert response["Content-Security-Policy"].startswith("sandbox")
        assert client.get(reverse("model_settings")).context["has_report_html"]
        client.logout()
        assert login(client, moderator).get(reverse("model_report", args=[tiny_detector])).status_code == 403
    finally:
        report.unlink()


def test_a_moderator_cannot_change_model_settings(client, moderator, tiny_detector):
    login(client, moderator)
    assert client.get(reverse("model_settings")).status_code == 403
    assert client.post(reverse("model_activate"), {"model_name": tiny_detector}).status_code == 403


def test_a_moderator_sees_shortcut_help_on_queue_and_detail(client, contributor, moderator):
    [item] = flagged_rows(contributor, 1)
    login(client, moderator)
    for url in (reverse("queue"), reverse("submission_detail", args=[item.pk])):
        html = client.get(url).content.decode()
        assert 'id="shortcut-help"' in html and "<kbd>?</kbd>" in html


def test_the_review_page_costs_a_bounded_number_of_queries_whatever_the_history(
    client, contributor, moderator, submission_make, force_verdict, django_assert_max_num_queries
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    for model_name in ("resnet50", "efficientnet_b0"):
        detection_row(submission=submission, model_name=model_name, verdict="ai")
    flagged_rows(contributor, 10, start=200)
    login(client, moderator)
    with django_assert_max_num_queries(18):
        page = client.get(reverse("submission_detail", args=[submission.pk]))
    assert len(page.context["detections"]) == 3


def test_a_heatmap_requested_while_the_broker_is_away_is_refused_with_a_message_not_a_500(
    client, contributor, moderator, submission_make, force_verdict
):
    force_verdict("ai")
    detection = submission_make(contributor=contributor).detections.get()
    login(client, moderator)
    with broker_switched(f"redis://127.0.0.1:{port_free()}/0"):  # nothing listens there
        celery_app.conf.task_always_eager = False
        response = client.post(reverse("heatmap_request", args=[detection.pk]), {"layer": "features.6"}, follow=True)
    assert response.status_code == 200
    assert "rendering=1" not in response.redirect_chain[-1][0]
    assert "Not rendered: The task queue is out of reach" in response.content.decode()


def test_the_settings_page_quotes_leave_source_out_figures_worst_collection_first(
    client, platform_admin, tiny_detector, tiny_weights_dir, settings, tmp_path
):
    import shutil

    shutil.copytree(tiny_weights_dir / tiny_detector, tmp_path / tiny_detector)
    settings.DETECTOR_WEIGHTS_DIR = tmp_path
    login(client, platform_admin)
    assert "Not measured on held-out collections" in client.get(reverse("model_settings")).content.decode()
    card_path = tmp_path / tiny_detector / "card.json"
    card = json.loads(card_path.read_text())
    rates = {"real:phones": (40, 0.025), "real:museum": (20, 0.1)}
    card["leave_source_out"] = {
        "k": 5,
        "minimum_n": 10,
        "false_flags_mean": 0.0625,
        "false_flags_worst": 0.1,
        "worst_collection": "real:museum",
        "to_human_all": 0.08,
        "recall_mean": 0.7,
        "recall_worst": 0.4,
        "roc_auc": 0.93,
        "recall_at_false_flags": {"0.01": 0.5, "0.03": 0.62},
        "false_flags": {unit: {"n": n, "rate": rate} for unit, (n, rate) in rates.items()},
        "to_human": {unit: {"n": n, "rate": 0.05} for unit, (n, _) in rates.items()},
        "recall": {"ai:flux": {"n": 30, "rate": 0.4}, "ai:openai": {"n": 12, "rate": 1.0}},
    }
    card_path.write_text(json.dumps(card))
    page = client.get(reverse("model_settings")).content.decode()
    section = page[page.index('id="leave-source-out"') :]
    assert "<strong>10.0%</strong> in the worst (real:museum)" in section
    assert "<strong>8.0%</strong> of genuine photos go to a moderator" in section
    assert section.index(">museum<") < section.index(">phones<"), "worst collection first"
    assert section.index(">flux<") < section.index(">openai<"), "worst generator first"
