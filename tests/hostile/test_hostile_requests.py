"""Requests the multipart parser itself refuses get a message saying what to do, from the API and the page."""

import html

import pytest
from django.urls import reverse
from PIL import Image

from moderation.models import State, Submission
from tests.conftest import login, upload_file
from tests.factories import image_bytes
from tests.hostile.test_hostile_uploads import _upload, assert_storage_matches_rows

BOUNDARY = "hostile-boundary"


def multipart(*, file_name: str, data: bytes) -> bytes:
    """Built by hand: Django's test client shortens file names to 255 characters before sending them."""
    return b"\r\n".join(
        [
            f"--{BOUNDARY}".encode(),
            b'Content-Disposition: form-data; name="scenery"',
            b"",
            b"forest",
            f"--{BOUNDARY}".encode(),
            f'Content-Disposition: form-data; name="files"; filename="{file_name}"'.encode(),
            b"Content-Type: image/jpeg",
            b"",
            data,
            f"--{BOUNDARY}--".encode(),
            b"",
        ]
    )


def api_client(user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api


@pytest.mark.parametrize("door", ["api", "page (json)", "page (html)"])
def test_two_hundred_files_in_one_request_get_a_message_naming_the_limit(client, contributor, settings, door):
    files = [upload_file(f"p{i}.jpg", image_bytes(seed=i, size=(8, 8))) for i in range(200)]
    if door == "api":
        response = api_client(contributor).post("/api/submissions/", {"files": files, "scenery": "forest"})
    else:
        accept = {"HTTP_ACCEPT": "application/json"} if door == "page (json)" else {}
        response = login(client, contributor).post(reverse("upload"), {"files": files, "scenery": "forest"}, **accept)
    assert response.status_code == 400
    message = f"At most {settings.UPLOAD_MAX_FILES} files can be uploaded in one request"
    if door == "page (html)":
        assert message in response.content.decode()
    else:
        assert message in response.json()["detail"]
    assert Submission.objects.count() == 0


@pytest.mark.parametrize("door", ["api", "page"])
def test_a_two_thousand_character_file_name_gets_a_message_not_a_crash(client, contributor, door):
    body = multipart(file_name="n" * 2000 + ".jpg", data=image_bytes())
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    if door == "api":
        response = api_client(contributor).post("/api/submissions/", body, content_type=content_type)
    else:
        login(client, contributor)
        response = client.post(reverse("upload"), body, content_type=content_type, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "file name is too long" in response.json()["detail"]
    assert Submission.objects.count() == 0


@pytest.mark.parametrize("interface", ["api", "form"])
def test_an_image_under_the_upload_limit_is_analysed_even_above_pillows_own_limit(
    client, contributor, force_verdict, django_capture_on_commit_callbacks, settings, monkeypatch, interface
):
    """One pixel limit: an image the upload accepts is never refused by a decoder's stricter default later."""
    force_verdict("uncertain")
    settings.UPLOAD_MAX_PIXELS = 150 * 100
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 140 * 100)  # Pillow's default sits below ours (89.5 < 100 MP)
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(interface, client, contributor, "big.png", image_bytes(fmt="PNG", size=(150, 100)))
    assert response.json()["results"][0]["ok"], response.content
    submission = Submission.objects.get()
    assert submission.state == State.FLAGGED, submission.failure_reason
    assert submission.detections.get().heatmaps.exists()
    assert_storage_matches_rows()


def test_every_process_decodes_with_the_upload_pixel_limit(settings):
    assert settings.UPLOAD_MAX_PIXELS == Image.MAX_IMAGE_PIXELS


MAYBE_REFUSED = "declared_ai must be true or false (1/0, yes/no, on/off), not 'maybe'."


@pytest.mark.parametrize("door", ["api", "page (json)", "page (html)"])
def test_a_declared_ai_that_is_neither_yes_nor_no_is_refused_alike_by_both_doors(client, contributor, door):
    form = {"files": [upload_file()], "scenery": "forest", "declared_ai": "maybe"}
    if door == "api":
        response = api_client(contributor).post("/api/submissions/", form)
        message = response.json()["declared_ai"]["0"][0]
    elif door == "page (json)":
        response = login(client, contributor).post(reverse("upload"), form, HTTP_ACCEPT="application/json")
        message = response.json()["declared_ai"][0]
    else:
        response = login(client, contributor).post(reverse("upload"), form)
        message = MAYBE_REFUSED if MAYBE_REFUSED in html.unescape(response.content.decode()) else ""
    assert response.status_code == 400
    assert message == MAYBE_REFUSED
    assert Submission.objects.count() == 0


@pytest.mark.parametrize("door", ["api", "page"])
@pytest.mark.parametrize(("sent", "declared"), [("on", True), ("1", True), ("false", False), ("0", False)])
def test_declared_ai_reads_the_same_yes_and_no_through_both_doors(client, contributor, door, sent, declared):
    form = {"files": [upload_file()], "scenery": "forest", "declared_ai": sent}
    if door == "api":
        response = api_client(contributor).post("/api/submissions/", form)
    else:
        response = login(client, contributor).post(reverse("upload"), form, HTTP_ACCEPT="application/json")
    assert response.status_code < 300, response.content
    assert Submission.objects.get().declared_ai is declared
