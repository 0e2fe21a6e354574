import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from audit.models import AuditEvent
from moderation.images import UploadRefused
from moderation.models import State, Submission
from tests.conftest import login, upload_file
from tests.factories import image_bytes


def png_with_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions: a decompression bomb that must never be decoded."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def post_upload(client, *files, scenery="forest", declared_ai="0"):
    return client.post(
        reverse("upload"),
        {"files": list(files), "scenery": scenery, "declared_ai": declared_ai},
        HTTP_ACCEPT="application/json",
    )


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


REFUSALS = {
    "corrupt jpeg": ("broken.jpg", image_bytes(fmt="JPEG")[:200], "corrupt or truncated"),
    "text file named .jpg": ("notes.jpg", b"just some text, not an image\n" * 10, "not an image we can read"),
    "empty file": ("empty.jpg", b"", "empty"),
    "30000x30000 png": ("bomb.png", png_with_header_only(30000, 30000), "MP limit"),
    "gif": ("anim.gif", image_bytes(fmt="GIF"), "GIF files are not accepted"),
    "bmp": ("old.bmp", image_bytes(fmt="BMP"), "BMP files are not accepted"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_bad_upload_is_refused_with_a_message_and_leaves_nothing_behind(client, contributor, media_in_tmp, case):
    name, data, message = case
    response = post_upload(login(client, contributor), upload_file(name, data))
    assert response.status_code == 207
    [result] = response.json()["results"]
    assert result["ok"] is False
    assert message.lower() in result["error"].lower()
    assert Submission.objects.count() == 0
    assert AuditEvent.objects.count() == 0
    assert stored_files(media_in_tmp) == []


def test_a_file_over_the_size_limit_is_refused(client, contributor, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = post_upload(login(client, contributor), upload_file("big.png", image_bytes(fmt="PNG", size=(300, 300))))
    assert "larger than the" in response.json()["results"][0]["error"]
    assert Submission.objects.count() == 0


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(client, contributor, settings):
    settings.UPLOAD_MAX_PIXELS = 50 * 50
    response = post_upload(login(client, contributor), upload_file("wide.jpg", image_bytes(size=(100, 60))))
    assert "100x60 pixels" in response.json()["results"][0]["error"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_jpeg_png_and_webp_are_accepted_and_their_bytes_kept_unchanged(client, contributor, force_verdict, fmt):
    force_verdict("real")
    data = image_bytes(fmt=fmt)
    response = post_upload(login(client, contributor), upload_file(f"photo.{fmt.lower()}", data))
    assert response.status_code == 200, response.content
    submission = Submission.objects.get()
    assert submission.image_format == fmt
    assert (submission.width, submission.height) == (96, 64)
    with default_storage.open(submission.original.name) as fh:
        assert fh.read() == data
    assert submission.sha256 == hashlib.sha256(data).hexdigest()


def test_a_batch_with_one_bad_file_stores_the_good_ones_and_reports_each(client, contributor, force_verdict):
    force_verdict("real")
    response = login(client, contributor).post(
        reverse("upload"),
        {
            "files": [
                upload_file("a.jpg", image_bytes(seed=1)),
                upload_file("b.jpg", b"nope"),
                upload_file("c.png", image_bytes(fmt="PNG", seed=2)),
            ],
            "scenery": ["sea", "forest", "glacier"],
            "declared_ai": ["0", "0", "1"],
        },
        HTTP_ACCEPT="application/json",
    )
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, True]
    by_name = {s.original_name: s for s in Submission.objects.all()}
    assert set(by_name) == {"a.jpg", "c.png"}
    assert by_name["a.jpg"].scenery == "sea" and not by_name["a.jpg"].declared_ai
    assert by_name["c.png"].scenery == "glacier" and by_name["c.png"].declared_ai


def test_the_same_bytes_twice_from_one_contributor_are_refused(contributor, submission_make, force_verdict):
    force_verdict("real")
    first = submission_make(contributor=contributor, data=image_bytes(seed=5))
    with pytest.raises(UploadRefused, match=f"#{first.pk}"):
        submission_make(contributor=contributor, data=image_bytes(seed=5))


def test_identical_bytes_from_two_contributors_are_analysed_once(
    contributor, other_contributor, submission_make, force_verdict, monkeypatch
):
    force_verdict("ai")
    first = submission_make(contributor=contributor, data=image_bytes(seed=9))
    second = submission_make(contributor=other_contributor, data=image_bytes(seed=9))
    assert first.state == second.state == State.FLAGGED
    [d1], [d2] = first.detections.all(), second.detections.all()
    assert d2.reused_from == d1
    assert d2.ai_probability == d1.ai_probability
    assert d2.latency_ms == 0
    assert first.original.name == second.original.name


def test_an_unknown_scenery_is_refused(contributor, submission_make):
    with pytest.raises(UploadRefused, match="scenery"):
        submission_make(contributor=contributor, scenery="space")


def test_the_upload_page_without_javascript_reports_results_as_html(client, contributor, force_verdict):
    force_verdict("real")
    login(client, contributor)
    response = client.post(reverse("upload"), {"files": [upload_file("x.jpg", b"garbage")], "scenery": "sea"})
    assert response.status_code == 207
    assert b"not an image we can read" in response.content
    page = client.get(reverse("upload"))
    assert b'id="dropzone"' in page.content


def test_uploading_nothing_asks_for_a_file(client, contributor):
    response = login(client, contributor).post(reverse("upload"), {"scenery": "sea"})
    assert response.status_code == 400
    assert b"Choose at least one image" in response.content


def test_stream_is_read_only_up_to_the_limit():
    from moderation.images import image_inspect

    class CountingStream(io.BytesIO):
        def read(self, size=-1):
            data = super().read(size)
            self.total = getattr(self, "total", 0) + len(data)
            return data

    stream = CountingStream(b"x" * 10_000)
    with pytest.raises(UploadRefused):
        image_inspect(stream=stream, max_bytes=100, max_pixels=10)
    assert stream.total == 101
