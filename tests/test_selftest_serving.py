"""The golden-output self-test where the portal serves: a refused model fails analyses with the reason, is
recorded per host for the model settings page, and turns /health/ to 503; every shipped model passes here."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from detection.models import SelfTestResult
from moderation.models import State
from tests.conftest import TINY_MODEL, login
from tests.selftests import bundle_with_drifted_golden

SHIPPED = Path(django_settings.BASE_DIR) / "detection" / "weights"

pytestmark = pytest.mark.django_db


def test_health_answers_ok_once_a_machine_has_checked_the_active_model(client, tiny_detector):
    from detection.services import detector_selftest_run

    assert client.get(reverse("health")).json()["selftest"] == {"hosts_passed": 0, "hosts_refused": 0}
    [result] = detector_selftest_run(model_names=[TINY_MODEL])
    assert result.passed and result.model_version
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": TINY_MODEL,
        "selftest": {"hosts_passed": 1, "hosts_refused": 0},
    }
    assert "no-cache" in response["Cache-Control"]


def test_health_answers_503_when_the_active_model_has_no_weights(client, settings, tiny_detector):
    settings.DETECTOR_DEFAULT_MODEL = "retired_model"
    response = client.get(reverse("health"))
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


def test_a_model_refused_by_its_self_test_fails_the_analysis_and_shows_on_the_settings_page_and_health(
    client, settings, tiny_weights_dir, tmp_path, contributor, platform_admin, submission_make
):
    settings.DETECTOR_WEIGHTS_DIR = bundle_with_drifted_golden(
        weights_dir=tiny_weights_dir, name=TINY_MODEL, target=tmp_path / "weights"
    )
    settings.DETECTOR_DEFAULT_MODEL = TINY_MODEL

    submission = submission_make(contributor=contributor)

    assert submission.state == State.FAILED
    assert f"model {TINY_MODEL}" in submission.failure_reason and "refused on this machine" in submission.failure_reason
    assert not submission.detections.exists()  # never a verdict from a model that computes differently here
    result = SelfTestResult.objects.get(model_name=TINY_MODEL)
    assert not result.passed and "AI probability off by" in result.detail

    health = client.get(reverse("health"))
    assert health.status_code == 503
    assert health.json() == {
        "status": "refused",
        "model": TINY_MODEL,
        "selftest": {"hosts_passed": 0, "hosts_refused": 1},
    }
    page = login(client, platform_admin).get(reverse("model_settings")).content.decode()
    assert "refused" in page and result.host in page and "refused on this machine" in page


def test_every_shipped_model_passes_its_self_test_on_this_machine(settings):
    from detection.selectors import model_names_available
    from detection.services import detector_selftest_run

    settings.DETECTOR_WEIGHTS_DIR = SHIPPED
    shipped = model_names_available()
    assert {"clip_probe_aug", "mobilenet_v2_keras"} <= set(shipped)
    results = detector_selftest_run(model_names=shipped, record=False)
    # Every bundle is checked, Keras ones in their TensorFlow child, none silently skipped.
    assert [result.model_name for result in results] == shipped
    assert {result.model_name: result.detail for result in results if not result.passed} == {}
