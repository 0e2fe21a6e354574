"""Identical bytes at the same moment from the upload page and the API, by the same contributor and by
another: one submission per contributor, and every original still in place afterwards."""

import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from moderation.models import Submission
from tests.conftest import upload_file
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ROUNDS = 10


def test_the_same_bytes_in_parallel_from_the_page_and_the_api_keep_every_original(
    contributor, other_contributor, monkeypatch
):
    # Storage and rows are the subject here; what the queue does with the messages is not.
    monkeypatch.setattr("common.deferred._send", lambda *args, **kwargs: None)
    senders = []
    for user in (contributor, other_contributor):
        page = Client()
        page.force_login(user)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        senders += [
            lambda data, page=page: page.post(
                reverse("upload"), {"files": [upload_file(data=data)], "scenery": "sea"}, HTTP_ACCEPT="application/json"
            ),
            lambda data, api=api: api.post("/api/submissions/", {"files": [upload_file(data=data)], "scenery": "sea"}),
        ]

    for round_ in range(ROUNDS):
        data = image_bytes(seed=1000 + round_)
        start = threading.Barrier(len(senders))
        statuses = []

        def send(sender, data=data, start=start, statuses=statuses):
            start.wait()
            try:
                statuses.append(sender(data).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(sender,)) for sender in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(status < 500 for status in statuses), statuses
        rows = Submission.objects.filter(sha256=Submission.objects.latest("pk").sha256)
        assert sorted(rows.values_list("contributor__username", flat=True)) == ["alice", "bob"], round_
        for submission in Submission.objects.all():
            assert default_storage.exists(submission.original.name), (round_, submission.pk)
