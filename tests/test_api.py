import io
import subprocess
import sys

import pytest
from django.core.cache import cache
from PIL import Image, PngImagePlugin
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from moderation import selectors as moderation_selectors
from moderation import services as moderation_services
from moderation.models import State, Submission
from tests.conftest import upload_file
from tests.factories import PASSWORD, image_bytes
from tests.test_dashboard import queue_rows

SUBMISSIONS = "/api/submissions/"


@pytest.fixture(autouse=True)
def throttle_counts_cleared():
    """Throttle histories live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def api_as(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def submission_in(state: str, *, contributor, seed: int = 0, scenery: str = "forest", **fields) -> Submission:
    """Uploaded through the real service; the analysis it queues is never sent (the test's transaction never
    commits), and the state is set as if it had run. For tests about the API, not the detector."""
    submission = moderation_services.submission_create(
        contributor=contributor, stream=io.BytesIO(image_bytes(seed=seed)), original_name="photo.jpg", scenery=scenery
    )
    Submission.objects.filter(pk=submission.pk).update(state=state, **fields)
    submission.refresh_from_db()
    return submission


@pytest.fixture
def flagged(contributor):
    return submission_in(State.FLAGGED, contributor=contributor, verdict="ai", ai_probability=0.93)


def png_with_generator_parameters() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "misty forest at dawn\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    buffer = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(fmt="PNG"))).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.fixture
def analysed(contributor, submission_make, force_verdict):
    """Flagged by a real run of the tiny model, with its detection, heatmap and provenance evidence."""
    force_verdict("ai")
    return submission_make(contributor=contributor, data=png_with_generator_parameters())


@pytest.fixture
def rejected(flagged, moderator):
    response = api_as(moderator).post(
        f"{SUBMISSIONS}{flagged.pk}/decision/", {"outcome": "reject", "reason": "ai-generated"}, format="json"
    )
    assert response.status_code == 201
    return flagged


# --- Authentication and roles ---------------------------------------------------------


def test_a_token_is_issued_for_username_and_password_and_authenticates_api_calls(contributor, flagged):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    listing = client.get(SUBMISSIONS)
    assert listing.status_code == 200
    assert [row["id"] for row in listing.json()["results"]] == [flagged.pk]


def test_a_wrong_password_gets_no_token(contributor):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert not Token.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/submissions/"),
        ("post", "/api/submissions/"),
        ("get", "/api/submissions/1/"),
        ("get", "/api/submissions/1/original/"),
        ("post", "/api/submissions/1/decision/"),
        ("post", "/api/submissions/1/requeue/"),
        ("post", "/api/submissions/1/reanalyse/"),
        ("post", "/api/submissions/1/appeal/"),
        ("get", "/api/queue/"),
        ("get", "/api/appeals/"),
        ("post", "/api/appeals/1/decision/"),
        ("get", "/api/statistics/"),
        ("get", "/api/heatmaps/1/"),
        ("get", "/api/webhooks/"),
        ("post", "/api/webhooks/"),
        ("delete", "/api/webhooks/1/"),
    ],
)
def test_an_anonymous_caller_gets_401_everywhere(db, method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_invalid_token_gets_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(SUBMISSIONS).status_code == 401


def test_a_contributor_gets_403_on_moderator_and_admin_endpoints(contributor, flagged):
    client = api_as(contributor)
    decision = {"outcome": "approve", "reason": "verified-photograph"}
    assert client.get("/api/queue/").status_code == 403
    assert client.get("/api/appeals/").status_code == 403
    assert client.post("/api/appeals/1/decision/", decision, format="json").status_code == 403
    assert client.post(f"{SUBMISSIONS}{flagged.pk}/decision/", decision, format="json").status_code == 403
    assert client.post(f"{SUBMISSIONS}{flagged.pk}/requeue/").status_code == 403
    assert client.post(f"{SUBMISSIONS}{flagged.pk}/reanalyse/", {"model": "x"}, format="json").status_code == 403
    assert client.get("/api/heatmaps/1/").status_code == 403  # refused before looking anything up
    assert client.get("/api/statistics/").status_code == 403
    assert client.get("/api/webhooks/").status_code == 403
    flagged.refresh_from_db()
    assert flagged.state == State.FLAGGED


def test_a_moderator_gets_403_on_uploads_statistics_and_webhooks(moderator):
    client = api_as(moderator)
    upload = {"files": [upload_file()], "scenery": "forest"}
    assert client.post(SUBMISSIONS, upload, format="multipart").status_code == 403
    assert client.get("/api/statistics/").status_code == 403
    assert client.get("/api/webhooks/").status_code == 403
    assert not Submission.objects.exists()


def test_a_contributor_gets_404_on_another_contributors_submission(flagged, other_contributor):
    client = api_as(other_contributor)
    assert client.get(f"{SUBMISSIONS}{flagged.pk}/").status_code == 404
    assert client.get(f"{SUBMISSIONS}{flagged.pk}/original/").status_code == 404
    assert client.post(f"{SUBMISSIONS}{flagged.pk}/appeal/", {"message": "mine!"}, format="json").status_code == 404
    assert client.get(SUBMISSIONS).json()["results"] == []


def test_api_modules_never_import_torch_or_tensorflow():
    code = (
        "import django, sys; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import api.views, webhooks.services, webhooks.tasks;"
        "sys.exit(1 if {'torch', 'tensorflow', 'keras'} & set(sys.modules) else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={"DJANGO_SETTINGS_MODULE": "portal.settings"}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr or "torch or tensorflow was imported by an API module"


# --- Uploads --------------------------------------------------------------------------


def test_a_contributor_uploads_several_files_and_gets_201_with_a_result_each(
    contributor, force_verdict, django_capture_on_commit_callbacks
):
    force_verdict("real")
    files = [upload_file("a.jpg", image_bytes(seed=1)), upload_file("b.png", image_bytes(fmt="PNG", seed=2))]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(contributor).post(
            SUBMISSIONS,
            {"files": files, "scenery": ["sea", "street"], "declared_ai": ["false", "true"]},
            format="multipart",
        )
    assert response.status_code == 201
    results = response.json()["results"]
    assert [(r["name"], r["ok"]) for r in results] == [("a.jpg", True), ("b.png", True)]
    first, second = (Submission.objects.get(pk=r["id"]) for r in results)
    assert (first.scenery, first.declared_ai, second.scenery, second.declared_ai) == ("sea", False, "street", True)
    assert first.state == second.state == State.CLEARED
    assert results[0]["url"] == f"http://testserver{SUBMISSIONS}{first.pk}/"


def test_an_uploaded_submission_reads_back_the_scenery_declared_and_the_one_suggested(
    contributor, scenery_head, force_verdict, django_capture_on_commit_callbacks
):
    from tests.scenery_heads import SUGGESTED

    force_verdict("real")
    client = api_as(contributor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            SUBMISSIONS, {"files": [upload_file("a.jpg", scenery_head)], "scenery": "street"}, format="multipart"
        )
    [result] = response.json()["results"]
    detail = client.get(result["url"]).json()
    assert (detail["scenery"], detail["suggested_scenery"]) == ("street", SUGGESTED)
    [listed] = client.get(SUBMISSIONS).json()["results"]
    assert listed["suggested_scenery"] == SUGGESTED


def test_a_batch_with_a_bad_file_gets_207_keeps_the_good_ones_and_says_what_is_wrong(contributor, media_in_tmp):
    files = [
        upload_file("good.jpg"),
        upload_file("notes.jpg", b"this is not an image"),
        upload_file("empty.jpg", b""),
    ]
    response = api_as(contributor).post(SUBMISSIONS, {"files": files, "scenery": "forest"}, format="multipart")
    assert response.status_code == 207
    good, text, empty = response.json()["results"]
    assert good["ok"] and Submission.objects.get(pk=good["id"]).original_name == "good.jpg"
    assert text == {
        "name": "notes.jpg",
        "ok": False,
        "error": "This is not an image we can read: upload JPEG, PNG or WebP.",
    }
    assert empty["error"] == "The file is empty."
    assert Submission.objects.count() == 1


def test_the_same_file_twice_is_refused_like_on_the_upload_page(contributor):
    client = api_as(contributor)
    assert client.post(SUBMISSIONS, {"files": [upload_file()], "scenery": "sea"}, format="multipart").status_code == 201
    again = client.post(SUBMISSIONS, {"files": [upload_file()], "scenery": "sea"}, format="multipart")
    assert again.status_code == 207
    assert again.json()["results"][0]["error"].startswith("You already uploaded this file as submission #")


def test_an_upload_without_files_or_with_mismatched_sceneries_is_a_400(contributor):
    client = api_as(contributor)
    assert client.post(SUBMISSIONS, {"scenery": "sea"}, format="multipart").status_code == 400
    files = [upload_file("a.jpg", image_bytes(seed=1)), upload_file("b.jpg", image_bytes(seed=2))]
    mismatched = {"files": [*files, upload_file("c.jpg", image_bytes(seed=3))], "scenery": ["sea", "street"]}
    response = client.post(SUBMISSIONS, mismatched, format="multipart")
    assert response.status_code == 400
    assert "scenery" in response.json()
    assert not Submission.objects.exists()


# --- Reading --------------------------------------------------------------------------


def test_a_moderator_filters_and_orders_submissions(moderator, contributor, other_contributor):
    low = submission_in(State.CLEARED, contributor=contributor, seed=1, scenery="sea", ai_probability=0.2)
    high = submission_in(State.FLAGGED, contributor=contributor, seed=2, scenery="sea", ai_probability=0.9)
    other = submission_in(State.FLAGGED, contributor=other_contributor, seed=3, ai_probability=0.5)
    client = api_as(moderator)

    def ids(**params) -> list[int]:
        response = client.get(SUBMISSIONS, params)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(ordering="-ai_probability") == [high.pk, other.pk, low.pk]
    assert ids(ordering="created_at") == [low.pk, high.pk, other.pk]
    assert ids(state="flagged", ordering="-ai_probability") == [high.pk, other.pk]
    assert ids(scenery="sea", ordering="ai_probability") == [low.pk, high.pk]
    assert ids(min_probability=0.4, max_probability=0.6) == [other.pk]
    assert ids(contributor="bob") == [other.pk]
    assert ids(model="no-such-model") == []
    today = other.created_at.date().isoformat()
    assert len(ids(created_from=today, created_to=today)) == 3
    assert ids(created_to="2000-01-01") == []
    assert client.get(SUBMISSIONS, {"min_probability": 0.9, "max_probability": 0.1}).status_code == 400
    assert client.get(SUBMISSIONS, {"ordering": "sha256"}).status_code == 400


def test_the_detail_shows_detections_heatmaps_decision_and_audit_trail(moderator, contributor, analysed):
    moderator_client = api_as(moderator)
    moderator_client.post(
        f"{SUBMISSIONS}{analysed.pk}/decision/",
        {"outcome": "reject", "reason": "ai-generated", "note": "Seven fingers"},
        format="json",
    )
    detail = moderator_client.get(f"{SUBMISSIONS}{analysed.pk}/").json()
    assert (detail["state"], detail["verdict"]) == ("rejected", "ai")
    [detection] = detail["detections"]
    assert detection["model_name"] == "tiny_mobilenet"
    assert detection["ai_probability"] == detail["ai_probability"] == analysed.ai_probability
    assert detection["latency_ms"] > 0
    [heatmap] = detection["heatmaps"]
    assert heatmap["layer"] == "features.13"
    image = moderator_client.get(heatmap["url"])
    assert (image.status_code, image["Content-Type"]) == (200, "image/png")
    assert detail["decision"]["outcome"] == "reject"
    assert detail["decision"]["reason"] == "ai-generated"
    assert detail["decision"]["note"] == "Seven fingers"
    assert detail["decision"]["moderator"] == "mona"
    [evidence] = detail["evidence"]
    assert (evidence["kind"], evidence["key"], evidence["suggests"]) == ("png_text", "parameters", "ai")
    assert [event["action"] for event in detail["audit_trail"]] == [
        "uploaded",
        "queued",
        "analysis started",
        "analysed",
        "decided",
    ]

    assert detail["audit_trail"][-1]["actor"] == "mona"


def test_a_contributor_sees_the_outcome_but_not_the_reviewer_material(moderator, contributor, analysed):
    decision = {"outcome": "reject", "reason": "ai-generated", "note": "Seven fingers"}
    api_as(moderator).post(f"{SUBMISSIONS}{analysed.pk}/decision/", decision, format="json")
    client = api_as(contributor)
    own = client.get(f"{SUBMISSIONS}{analysed.pk}/").json()
    assert own["state"] == "rejected"
    assert own["decision"]["reason_label"] == "AI-generated image"
    assert own["decision"]["note"] == "Seven fingers"
    # As on the web page: scores, heatmaps, evidence and who decided stay with the moderators.
    assert "ai_probability" not in own and "verdict" not in own
    assert own["detections"] == [] and own["evidence"] == []
    assert own["decision"]["moderator"] is None
    assert {event["actor"] for event in own["audit_trail"]} == {None}
    original = client.get(own["original_url"])
    assert b"".join(original.streaming_content) == analysed.original.open("rb").read()


def test_the_queue_lists_flagged_items_most_likely_ai_first(moderator, contributor):
    low = submission_in(State.FLAGGED, contributor=contributor, seed=1, ai_probability=0.61)
    high = submission_in(State.FLAGGED, contributor=contributor, seed=2, ai_probability=0.97)
    submission_in(State.CLEARED, contributor=contributor, seed=3, ai_probability=0.99)
    client = api_as(moderator)
    assert [row["id"] for row in client.get("/api/queue/").json()["results"]] == [high.pk, low.pk]
    assert [row["id"] for row in client.get("/api/queue/", {"min_probability": 0.9}).json()["results"]] == [high.pk]


@pytest.mark.parametrize("ordering", list(moderation_selectors.QUEUE_ORDERINGS))
def test_the_queue_pages_by_position_so_decisions_between_requests_neither_repeat_nor_skip_an_item(
    settings, moderator, second_moderator, contributor, ordering
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": 7}
    waiting = {s.pk for s in queue_rows(contributor, 30)}
    client = api_as(moderator)
    page = client.get("/api/queue/", {"ordering": ordering}).json()
    assert page["count"] == 30 and page["previous"] is None
    seen = [row["id"] for row in page["results"]]
    for pk in seen[:3]:  # decided by someone else before the next request
        moderation_services.submission_decide(
            submission_id=pk, moderator=second_moderator, outcome="reject", reason_code="ai-generated"
        )
    pages = [page]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
        seen += [row["id"] for row in pages[-1]["results"]]
    assert sorted(seen) == sorted(waiting)  # each item exactly once

    # Back from the third page: the seven items just before its first one, in the queue's order now.
    order = list(
        moderation_selectors.review_queue(
            moderator=moderator, filters=moderation_selectors.QueueFilters(ordering=ordering)
        ).values_list("pk", flat=True)
    )
    start = order.index(pages[2]["results"][0]["id"])
    previous = client.get(pages[2]["previous"]).json()
    assert [row["id"] for row in previous["results"]] == order[start - 7 : start]
    assert client.get(previous["next"]).json()["results"][0]["id"] == order[start]


# --- Decisions ------------------------------------------------------------------------


def test_a_second_decision_on_the_same_item_gets_409_and_changes_nothing(flagged, moderator, second_moderator):
    path = f"{SUBMISSIONS}{flagged.pk}/decision/"
    first = api_as(moderator).post(path, {"outcome": "approve", "reason": "verified-photograph"}, format="json")
    assert first.status_code == 201
    assert first.json()["outcome"] == "approve"
    second = api_as(second_moderator).post(path, {"outcome": "reject", "reason": "ai-generated"}, format="json")
    assert second.status_code == 409
    assert second.json()["detail"] == f"Submission #{flagged.pk} is approved, not flagged or cleared."
    flagged.refresh_from_db()
    assert flagged.state == State.APPROVED


def test_a_reason_that_does_not_fit_the_outcome_gets_400(flagged, moderator):
    response = api_as(moderator).post(
        f"{SUBMISSIONS}{flagged.pk}/decision/", {"outcome": "approve", "reason": "ai-generated"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"reason": ["'ai-generated' is not a reason for approve."]}
    flagged.refresh_from_db()
    assert flagged.state == State.FLAGGED


def test_deciding_a_missing_submission_gets_404(moderator):
    response = api_as(moderator).post(
        f"{SUBMISSIONS}999999/decision/", {"outcome": "approve", "reason": "verified-photograph"}, format="json"
    )
    assert response.status_code == 404


def test_a_moderator_requeues_a_failed_submission_but_not_a_flagged_one(
    moderator, contributor, submission_make, settings, tmp_path, flagged
):
    settings.DETECTOR_WEIGHTS_DIR = tmp_path / "empty"
    failed = submission_make(contributor=contributor, data=image_bytes(seed=9))
    assert failed.state == State.FAILED  # a real failed analysis: no weights
    client = api_as(moderator)
    response = client.post(f"{SUBMISSIONS}{failed.pk}/requeue/")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert AuditEvent.objects.filter(submission=failed, action="requeued", actor=moderator).exists()
    assert client.post(f"{SUBMISSIONS}{flagged.pk}/requeue/").status_code == 409


def test_a_moderator_asks_for_a_second_opinion_from_a_model_with_weights(
    analysed, moderator, tiny_detector, django_capture_on_commit_callbacks
):
    client = api_as(moderator)
    unknown = client.post(f"{SUBMISSIONS}{analysed.pk}/reanalyse/", {"model": "resnet9000"}, format="json")
    assert unknown.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{SUBMISSIONS}{analysed.pk}/reanalyse/", {"model": tiny_detector}, format="json")
    assert response.status_code == 202
    actions = list(analysed.audit_events.values_list("action", flat=True))
    assert "re-analysis requested" in actions and "re-analysed" in actions
    analysed.refresh_from_db()
    assert analysed.state == State.FLAGGED


# --- Appeals --------------------------------------------------------------------------


def test_a_contributor_appeals_once_and_another_moderator_decides_it(
    rejected, contributor, moderator, second_moderator
):
    client = api_as(contributor)
    response = client.post(f"{SUBMISSIONS}{rejected.pk}/appeal/", {"message": "Shot on film, scan attached."})
    assert response.status_code == 201
    appeal_id = response.json()["id"]
    again = client.post(f"{SUBMISSIONS}{rejected.pk}/appeal/", {"message": "Please!"})
    assert again.status_code == 403
    assert "once" in again.json()["detail"]

    assert [a["id"] for a in api_as(second_moderator).get("/api/appeals/").json()["results"]] == [appeal_id]
    decision = {"outcome": "approve", "reason": "camera-evidence", "note": "Film scan checks out"}
    own_call = api_as(moderator).post(f"/api/appeals/{appeal_id}/decision/", decision, format="json")
    assert own_call.status_code == 403
    response = api_as(second_moderator).post(f"/api/appeals/{appeal_id}/decision/", decision, format="json")
    assert response.status_code == 201
    assert (response.json()["stage"], response.json()["outcome"]) == ("appeal", "approve")
    detail = api_as(second_moderator).get(f"{SUBMISSIONS}{rejected.pk}/").json()
    assert detail["state"] == "approved"
    assert [(d["stage"], d["moderator"]) for d in detail["decisions"]] == [("review", "mona"), ("appeal", "max")]
    assert detail["decision"]["outcome"] == "approve"
    assert detail["appeal"]["message"] == "Shot on film, scan attached."


def test_only_a_rejected_submission_can_be_appealed(flagged, contributor):
    response = api_as(contributor).post(f"{SUBMISSIONS}{flagged.pk}/appeal/", {"message": "Why flagged?"})
    assert response.status_code == 409


def test_deciding_a_missing_appeal_gets_404(moderator):
    decision = {"outcome": "approve", "reason": "camera-evidence"}
    assert api_as(moderator).post("/api/appeals/999999/decision/", decision, format="json").status_code == 404


# --- Statistics -----------------------------------------------------------------------


def test_an_admin_reads_statistics_per_scenery_and_day(platform_admin, moderator, analysed):
    decision = {"outcome": "reject", "reason": "ai-generated"}
    api_as(moderator).post(f"{SUBMISSIONS}{analysed.pk}/decision/", decision, format="json")
    response = api_as(platform_admin).get("/api/statistics/")
    assert response.status_code == 200
    data = response.json()
    assert data["model_name"] == "tiny_mobilenet"
    assert data["overall"]["submissions"] == 1
    assert data["overall"]["true_positives"] == 1
    forest = next(row for row in data["sceneries"] if row["scenery"] == "forest")
    assert (forest["flagged"], forest["rejected"], forest["precision"]) == (1, 1, 1.0)
    assert [day["submissions"] for day in data["days"]] == [1]
    assert api_as(platform_admin).get("/api/statistics/", {"date_from": "not-a-date"}).status_code == 400


# --- Throttling -----------------------------------------------------------------------


def rates_set(settings, **rates: str) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def test_a_token_over_the_general_rate_gets_429(contributor, settings):
    rates_set(settings, user="3/minute", upload="10/minute")
    client = api_as(contributor)
    assert [client.get(SUBMISSIONS).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert "Retry-After" in client.get(SUBMISSIONS)


def test_uploads_have_their_own_stricter_rate_per_account(contributor, other_contributor, settings):
    rates_set(settings, user="600/minute", upload="2/minute")
    client = api_as(contributor)
    codes = [
        client.post(SUBMISSIONS, {"files": [upload_file(data=image_bytes(seed=i))], "scenery": "sea"}).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]
    assert Submission.objects.count() == 2
    assert client.get(SUBMISSIONS).status_code == 200  # reading is not an upload
    other = api_as(other_contributor).post(SUBMISSIONS, {"files": [upload_file()], "scenery": "sea"})
    assert other.status_code == 201


def test_the_platforms_ingestion_account_uploads_at_its_pipeline_rate(contributor, other_contributor, settings):
    rates_set(settings, user="600/minute", upload="2/minute", user_ingestion="600/minute", upload_ingestion="5/minute")
    settings.API_INGESTION_ACCOUNTS = frozenset({contributor.username})
    pipeline = api_as(contributor)
    codes = [
        pipeline.post(SUBMISSIONS, {"files": [upload_file(data=image_bytes(seed=i))], "scenery": "sea"}).status_code
        for i in range(6)
    ]
    assert codes == [201] * 5 + [429]
    person = api_as(other_contributor)
    codes = [
        person.post(SUBMISSIONS, {"files": [upload_file(data=image_bytes(seed=i))], "scenery": "sea"}).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]


# --- Webhook registration -------------------------------------------------------------


def test_an_admin_registers_lists_and_deletes_their_own_webhooks(platform_admin, db):
    from tests.factories import UserFactory

    client = api_as(platform_admin)
    created = client.post(
        "/api/webhooks/", {"url": "https://hooks.example.com/portal", "events": ["submission.decided"]}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert len(body["secret"]) == 64
    assert body["events"] == ["submission.decided"] and body["active"] is True
    listing = client.get("/api/webhooks/").json()["results"]
    assert [hook["id"] for hook in listing] == [body["id"]]
    assert "secret" not in listing[0]

    other_admin = UserFactory(username="grace", role="admin")
    assert api_as(other_admin).get("/api/webhooks/").json()["results"] == []
    assert api_as(other_admin).delete(f"/api/webhooks/{body['id']}/").status_code == 404
    assert client.delete(f"/api/webhooks/{body['id']}/").status_code == 204
    assert client.get("/api/webhooks/").json()["results"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "file:///etc/passwd", "events": ["submission.decided"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["submission.decided"]}, "url"),
        ({"url": "not a url", "events": ["submission.decided"]}, "url"),
        ({"url": "https://example.com/x", "events": ["submission.deleted"]}, "events"),
        ({"url": "https://example.com/x", "events": []}, "events"),
    ],
)
def test_a_webhook_needs_an_http_url_and_known_events(platform_admin, payload, field):
    response = api_as(platform_admin).post("/api/webhooks/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
