"""Password guessing is cut off, private pages are never cached and run under a strict CSP."""

from pathlib import Path

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import login
from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def lockouts_cleared():
    """Failure counts live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def test_after_five_wrong_passwords_at_the_login_page_the_right_one_is_refused_too(client, contributor, settings):
    codes = [
        client.post(reverse("login"), {"username": contributor.username, "password": "guess"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert codes == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form again, then the lockout
    response = client.post(reverse("login"), {"username": contributor.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed log-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_after_five_wrong_passwords_the_token_endpoint_refuses_the_right_one(contributor, settings):
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert api.post("/api/auth/token/", {"username": contributor.username, "password": "x"}).status_code in (
            400,
            429,
        )
    response = api.post("/api/auth/token/", {"username": contributor.username, "password": PASSWORD})
    assert response.status_code in (400, 429)
    assert "token" not in response.json()


def test_a_lockout_holds_one_username_from_one_address_only(client, contributor, other_contributor, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": contributor.username, "password": "guess"})
    response = client.post(reverse("login"), {"username": other_contributor.username, "password": PASSWORD})
    assert response.status_code == 302
    other_address = client.post(
        reverse("login"), {"username": contributor.username, "password": PASSWORD}, REMOTE_ADDR="203.0.113.9"
    )
    assert other_address.status_code == 302


def test_a_right_password_before_the_limit_clears_the_count(client, contributor, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": contributor.username, "password": "guess"})
    assert client.post(reverse("login"), {"username": contributor.username, "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": contributor.username, "password": "guess"})
    assert client.post(reverse("login"), {"username": contributor.username, "password": PASSWORD}).status_code == 302


def test_private_pages_and_images_are_never_stored_by_a_cache(client, contributor, submission_make, force_verdict):
    force_verdict("real")
    submission = submission_make(contributor=contributor)
    login(client, contributor)
    for url in [
        reverse("submission_list"),
        reverse("submission_detail", args=[submission.pk]),
        reverse("submission_original", args=[submission.pk]),
        f"/api/submissions/{submission.pk}/original/",
    ]:
        cache_control = {part.strip() for part in client.get(url)["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= cache_control, url


def test_pages_allow_scripts_and_styles_from_the_site_only(client, contributor):
    response = login(client, contributor).get(reverse("upload"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_no_template_carries_inline_scripts_or_handlers():
    for template in Path("templates").rglob("*.html"):
        text = template.read_text()
        assert "<script>" not in text, template
        assert ' onchange="' not in text and ' onclick="' not in text and ' onsubmit="' not in text, template


def test_a_forged_forwarded_address_does_not_escape_a_lockout(client, contributor, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("login"),
            {"username": contributor.username, "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        )
    response = client.post(
        reverse("login"), {"username": contributor.username, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="10.0.0.99"
    )
    assert response.status_code == 429
