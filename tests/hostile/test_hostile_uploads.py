"""The attack corpus through both doors: the API and the upload page. Each file is refused with its message
or analysed; nothing answers 5xx, nothing is stored half-way, no file is left without a row or a row
without its file."""

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from detection.models import Heatmap
from moderation.models import State, Submission
from tests.conftest import login, upload_file
from tests.hostile.corpus import ANALYSED, CASES, EITHER

INTERFACES = ["api", "form"]


def _upload(interface: str, client, user, name: str, data: bytes):
    if interface == "api":
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return api.post("/api/submissions/", {"files": [upload_file(name, data)], "scenery": "forest"})
    login(client, user)
    return client.post(
        reverse("upload"), {"files": [upload_file(name, data)], "scenery": "forest"}, HTTP_ACCEPT="application/json"
    )


def _stored(folder: str) -> set[str]:
    def walk(path: str) -> set[str]:
        if not default_storage.exists(path):
            return set()
        folders, files = default_storage.listdir(path)
        return {f"{path}/{f}" for f in files} | {name for d in folders for name in walk(f"{path}/{d}")}

    return walk(folder)


def assert_storage_matches_rows() -> None:
    assert _stored("originals") == {s.original.name for s in Submission.objects.all()}
    assert _stored("heatmaps") == {h.image.name for h in Heatmap.objects.all()}


def test_the_corpus_holds_at_least_forty_files_of_both_kinds():
    expectations = [build()[2] for build in CASES.values()]
    assert len(expectations) >= 40
    assert expectations.count(ANALYSED) >= 10
    assert len(expectations) - expectations.count(ANALYSED) >= 30


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_hostile_file_is_refused_with_its_message_or_analysed(
    client, contributor, force_verdict, django_capture_on_commit_callbacks, interface, case
):
    force_verdict("uncertain")  # flagged, so a heatmap is rendered too
    name, data, expected = CASES[case]()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(interface, client, contributor, name, data)

    assert response.status_code < 500
    [result] = response.json()["results"]
    submission = Submission.objects.filter(pk=result.get("id")).first()
    if expected == EITHER:
        expected = ANALYSED if result["ok"] else "corrupt or truncated"
    if expected == ANALYSED:
        assert result["ok"], result
        assert submission.state == State.FLAGGED, submission.failure_reason
        assert submission.detections.get().heatmaps.exists()
    else:
        assert not result["ok"]
        assert expected.lower() in result["error"].lower()
        assert Submission.objects.count() == 0
    assert_storage_matches_rows()
