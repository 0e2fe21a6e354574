"""Both interfaces map the domain's errors once: the API by status, the pages as a message or a 404."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from api.errors import exception_handler
from common.errors import Conflict, Forbidden, Invalid, NotFound
from moderation.models import Submission
from tests.conftest import login


@pytest.mark.parametrize(
    ("error", "status"), [(Invalid("no"), 400), (Forbidden("no"), 403), (NotFound("no"), 404), (Conflict("no"), 409)]
)
def test_the_api_answers_each_domain_error_with_its_status_and_message(error, status):
    response = exception_handler(error, {})
    assert (response.status_code, response.data) == (status, {"detail": "no"})


def test_an_error_about_one_field_is_keyed_by_that_field_like_a_serializers():
    assert exception_handler(Invalid("unknown", field="model"), {}).data == {"model": ["unknown"]}


def test_a_bare_value_error_is_a_server_error_not_the_clients_mistake():
    assert exception_handler(ValueError("a bug"), {}) is None  # DRF lets it through: a 500


def test_a_missing_row_is_a_404_in_the_api(db):
    response = exception_handler(Submission.DoesNotExist(), {})
    assert response.status_code == 404


@pytest.mark.django_db
def test_deciding_requeueing_or_reanalysing_a_missing_submission_is_a_404_page_and_api_answer(
    client, moderator, tiny_detector
):
    login(client, moderator)
    api = APIClient()
    api.force_authenticate(moderator)
    for name, data in [
        ("submission_decide", {"outcome": "approve", "reason": "verified-photograph"}),
        ("submission_requeue", {}),
        ("submission_reanalyse", {"model_name": tiny_detector}),
    ]:
        assert client.post(reverse(name, args=[999999]), data).status_code == 404, name
    for name in ("api:submission-decision", "api:submission-requeue", "api:submission-reanalyse"):
        response = api.post(
            reverse(name, args=[999999]),
            {"outcome": "approve", "reason": "verified-photograph", "model": tiny_detector},
        )
        assert response.status_code == 404, name
