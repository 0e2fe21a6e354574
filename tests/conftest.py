import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest

from detection.models import ModelSetting
from moderation import roles, services
from moderation.models import Scenery, Submission
from portal.celery import app as celery_app
from tests.factories import PASSWORD, UserFactory, image_bytes

TINY_MODEL = "tiny_mobilenet"

# Threshold bands that force a verdict whatever the tiny model says: (low, high).
FORCED_BANDS = {"ai": (0.0, 0.0), "real": (1.01, 1.01), "uncertain": (0.0, 1.01)}


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def tasks_in_process():
    """Unit tests run tasks in-process; the worker test switches this off to use Redis."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def no_scenery_head(settings, tmp_path):
    """No scenery suggestions unless a test makes a head (the `scenery_head` fixture), never the shipped one."""
    settings.SCENERY_HEAD_DIR = tmp_path / "no-scenery-head"


@pytest.fixture(autouse=True)
def no_spot_checks(settings):
    """Spot checks are drawn at random; tests that are about them set SPOT_CHECK_SHARE themselves."""
    settings.SPOT_CHECK_SHARE = 0.0


@pytest.fixture
def contributor(db):
    return UserFactory(username="alice", role=roles.CONTRIBUTOR)


@pytest.fixture
def other_contributor(db):
    return UserFactory(username="bob", role=roles.CONTRIBUTOR)


@pytest.fixture
def moderator(db):
    return UserFactory(username="mona", role=roles.MODERATOR)


@pytest.fixture
def second_moderator(db):
    return UserFactory(username="max", role=roles.MODERATOR)


@pytest.fixture
def platform_admin(db):
    return UserFactory(username="ada", role=roles.ADMIN)


def login(client, user):
    # The lockout backend counts attempts per address, so it needs the request a real login has.
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    assert client.login(request=request, username=user.username, password=PASSWORD)
    return client


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory) -> Path:
    """A real MobileNetV2 bundle trained for a moment on synthetic images, made once per test run."""
    from detection.core.data import Sample
    from detection.core.inference import detector_load
    from detection.core.selftest import golden_write
    from detection.core.train import train_run
    from tests.detection.synthetic import image_synthetic

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    samples = []
    for i in range(24):
        ai = i % 2 == 1
        path = root / f"img{i}.png"
        image_synthetic(rng, ai=ai, size=48).save(path)
        samples.append(Sample(path=path, label=int(ai), scenery="forest", group=str(i), source="synthetic"))
    weights = root / "weights"
    train_run(
        arch="mobilenet_v2",
        train=samples[:16],
        val=samples[16:],
        out_dir=weights,
        name=TINY_MODEL,
        epochs=1,
        image_size=32,
        batch_size=8,
        progress=False,
    )
    golden_write(directory=weights / TINY_MODEL, detector=detector_load(weights_dir=weights, name=TINY_MODEL))
    return weights


@pytest.fixture
def tiny_detector(settings, tiny_weights_dir: Path) -> str:
    settings.DETECTOR_WEIGHTS_DIR = tiny_weights_dir
    settings.DETECTOR_DEFAULT_MODEL = TINY_MODEL
    return TINY_MODEL


@pytest.fixture
def scenery_head(settings, tmp_path, tiny_detector, tiny_weights_dir) -> bytes:
    """The test model as the active one and a tiny scenery head, made here on the shipped CLIP encoder, that
    suggests SUGGESTED (tests.scenery_heads) for the returned image."""
    from tests.scenery_heads import SUGGESTED, encoder_embedding, head_pointing_at, weights_with_encoder

    data = image_bytes(seed=5, size=(320, 240))
    settings.DETECTOR_WEIGHTS_DIR = weights_with_encoder(
        directory=tmp_path / "weights", tiny_weights_dir=tiny_weights_dir, tiny_model=tiny_detector
    )
    settings.SCENERY_HEAD_DIR = head_pointing_at(
        directory=tmp_path / "scenery", embedding=encoder_embedding(data), scenery=SUGGESTED
    )
    return data


@pytest.fixture
def force_verdict(db, tiny_detector):
    """Pin the tiny model's thresholds so a test decides whether analysis clears or flags."""

    def force(verdict: str) -> None:
        low, high = FORCED_BANDS[verdict]
        ModelSetting.objects.update_or_create(
            model_name=tiny_detector,
            defaults={"thresholds": {s: {"low": low, "high": high} for s in Scenery.values}},
        )

    return force


def upload_file(name: str = "photo.jpg", data: bytes | None = None, content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, image_bytes(fmt="JPEG") if data is None else data, content_type=content_type)


@pytest.fixture
def submission_make(django_capture_on_commit_callbacks):
    """Create a submission through the real service, running its on-commit analysis."""

    def make(*, contributor, data: bytes | None = None, scenery: str = "forest", **kwargs) -> Submission:
        with django_capture_on_commit_callbacks(execute=True):
            submission = services.submission_create(
                contributor=contributor,
                stream=io.BytesIO(data or image_bytes()),
                original_name="photo.jpg",
                scenery=scenery,
                **kwargs,
            )
        submission.refresh_from_db()
        return submission

    return make


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Strong hashing is slow by design; tests create many accounts and prove nothing by paying for it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
