"""Keras bundles: a tiny Keras model trained here (in a TensorFlow child process, tests.keras_models:
this one imports torch, so it never imports keras or tensorflow) on
images whose class is decided by one quarter, imported with `manage.py import_keras_model`, serving analyses
in-process through a TensorFlow child and on its own `keras` worker over Redis, with Grad-CAM pointing at
the decisive quarter."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from PIL import Image

from detection.models import Detection, Heatmap, ModelSetting, SelfTestResult
from moderation.models import Scenery, State, Submission
from tests.conftest import TINY_MODEL, login, upload_file
from tests.detection.synthetic import image_with_artefact
from tests.selftests import bundle_with_drifted_golden
from tests.workers import BROKER_URL, worker_running

KERAS_MODEL = "tiny_keras"
TINY_SIZE = 48
DECISIVE = (1, 1)  # the artefact in the bottom-right quarter of the images analysed below
BASE_DIR = Path(django_settings.BASE_DIR)


def tf_child(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python ARGS` from the repository root: TensorFlow only ever runs in such a child."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="session")
def quadrant_split(tmp_path_factory) -> Path:
    """A data folder of 48 px images, AI ones with the artefact in a random quarter, and its split file."""
    from detection.core.data import split_make, split_save

    root = tmp_path_factory.mktemp("quadrants")
    rng = np.random.default_rng(1)
    for label in ("real", "ai_generated"):
        for scenery in ("forest", "sea"):
            folder = root / "data" / label / scenery
            folder.mkdir(parents=True)
            for i in range(24):
                quadrant = (int(rng.integers(2)), int(rng.integers(2))) if label == "ai_generated" else None
                image_with_artefact(rng, size=TINY_SIZE, quadrant=quadrant).save(folder / f"{i}.png")
    split_save(split_make(folders=[root / "data"], seed=0), path=root / "split.json")
    return root / "split.json"


@pytest.fixture(scope="session")
def keras_weights_dir(quadrant_split: Path, tiny_weights_dir: Path, tmp_path_factory) -> Path:
    """The tiny Keras model imported as a bundle, beside the tiny PyTorch bundle (one weights folder, both kinds)."""
    root = tmp_path_factory.mktemp("keras")
    trained = tf_child("-m", "tests.keras_models", "train", quadrant_split, TINY_SIZE, root / "tiny.keras")
    assert trained.returncode == 0, trained.stderr[-3000:]
    weights = root / "weights"
    imported = tf_child(
        "manage.py",
        "import_keras_model",
        root / "tiny.keras",
        "--name",
        KERAS_MODEL,
        "--split",
        quadrant_split,
        "--input-scale",
        "unit",
        env={"DETECTOR_WEIGHTS_DIR": str(weights)},
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    (weights / TINY_MODEL).symlink_to(tiny_weights_dir / TINY_MODEL)
    return weights


@pytest.fixture
def keras_settings(settings, keras_weights_dir: Path) -> Path:
    settings.DETECTOR_WEIGHTS_DIR = keras_weights_dir
    settings.DETECTOR_DEFAULT_MODEL = KERAS_MODEL
    return keras_weights_dir


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decisive_image(seed: int = 7) -> Image.Image:
    return image_with_artefact(np.random.default_rng(seed), size=TINY_SIZE, quadrant=DECISIVE)


def peak_quadrant(heat: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(row >= heat.shape[0] // 2), int(col >= heat.shape[1] // 2)


def test_an_imported_keras_model_records_its_input_scaling_and_gradcam_layers_and_is_selectable(keras_settings):
    from detection.selectors import model_card_get, model_names_available, model_queue

    card = model_card_get(name=KERAS_MODEL)
    assert card.arch == "keras" and card.image_size == TINY_SIZE
    assert card.keras == {
        "input_scale": "unit",
        "output": "sigmoid",
        "ai_index": 0,
        "input_size": TINY_SIZE,
        "weights_dtype": "float32",
    }
    assert "x / 255, in [0, 1]" in card.preprocessing
    # The last layer of each of the three spatial resolutions; the middle one by default, as for PyTorch nets.
    assert card.gradcam_layers == ("conv1", "conv2", "conv4") and card.gradcam_default_layer == "conv2"
    assert 0.0 <= card.thresholds.low <= card.thresholds.high <= 1.0
    assert card.metrics["val"]["roc_auc"] > 0.9
    assert card.version.startswith("imported-")
    assert KERAS_MODEL in model_names_available()
    assert model_queue(name=KERAS_MODEL) == "keras" and model_queue(name=TINY_MODEL) == "gpu"


def test_an_imported_keras_model_reproduces_its_golden_outputs_and_is_refused_where_they_drift(
    keras_weights_dir, tmp_path
):
    from detection.core.selftest import SelfTestFailed
    from detection.runtime import detector_open_checked

    golden = json.loads((keras_weights_dir / KERAS_MODEL / "golden.json").read_text())
    assert list(golden["files_sha256"]) == ["model.keras"] and len(golden["outputs"]["logits"][0]) == 1
    # A PyTorch process checks it in its TensorFlow child, as it serves it.
    detector = detector_open_checked(weights_dir=keras_weights_dir, name=KERAS_MODEL, device="cpu", framework="torch")
    assert detector.name == KERAS_MODEL
    drifted = bundle_with_drifted_golden(weights_dir=keras_weights_dir, name=KERAS_MODEL, target=tmp_path)
    with pytest.raises(SelfTestFailed, match=f"model {KERAS_MODEL} .*refused on this machine.*AI probability off by"):
        detector_open_checked(weights_dir=drifted, name=KERAS_MODEL, device="cpu", framework="torch")


def test_a_malformed_keras_file_is_refused_with_a_clear_message_and_leaves_no_bundle(quadrant_split, tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 this is not a Keras archive")
    result = tf_child(
        "manage.py",
        "import_keras_model",
        tmp_path / "broken.keras",
        "--name",
        "broken",
        "--split",
        quadrant_split,
        env={"DETECTOR_WEIGHTS_DIR": str(tmp_path / "weights")},
    )
    assert result.returncode != 0
    assert "broken.keras refused: broken.keras is not a readable Keras model" in result.stderr
    assert not (tmp_path / "weights" / "broken").exists()


def test_a_keras_model_that_is_no_binary_classifier_is_refused(quadrant_split, tmp_path):
    made = tf_child("-m", "tests.keras_models", "three-class", tmp_path / "three.keras")
    assert made.returncode == 0, made.stderr[-3000:]
    result = tf_child(
        "manage.py",
        "import_keras_model",
        tmp_path / "three.keras",
        "--name",
        "three",
        "--split",
        quadrant_split,
        env={"DETECTOR_WEIGHTS_DIR": str(tmp_path / "weights")},
    )
    assert result.returncode != 0
    assert "a binary classifier ends in one sigmoid unit or two softmax units" in result.stderr
    assert not (tmp_path / "weights" / "three").exists()


def seed_network_train(*args: object, weights: Path) -> subprocess.CompletedProcess:
    """`manage.py train_keras_mobilenet` at a size and length a test affords (no ImageNet start)."""
    return tf_child(
        "manage.py",
        "train_keras_mobilenet",
        *args,
        "--no-imagenet-start",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--batch-size",
        "16",
        "--name",
        "seed_tiny",
        env={"DETECTOR_WEIGHTS_DIR": str(weights)},
    )


def test_the_seed_network_trains_on_extra_folders_only_and_its_card_counts_them(quadrant_split, tmp_path):
    rng = np.random.default_rng(5)
    for label, quadrant in (("real", None), ("ai_generated", (0, 0))):
        folder = tmp_path / "extra" / label / "street"
        folder.mkdir(parents=True)
        for i in range(6):
            image_with_artefact(rng, size=TINY_SIZE, quadrant=quadrant).save(folder / f"{i}.png")
    result = seed_network_train("--split", quadrant_split, "--extra-train", tmp_path / "extra", weights=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    splits = json.loads(quadrant_split.read_text())["splits"]
    card = json.loads((tmp_path / "seed_tiny" / "card.json").read_text())
    assert card["training"]["extra_train"] == {"extra": 12}
    assert card["training"]["train_images"] == len(splits["train"]) + 12
    assert card["training"]["val_images"] == len(splits["val"])
    report = json.loads((tmp_path / "seed_tiny" / "report.json").read_text())
    assert report["test"]["overall"]["n"] == len(splits["test"])
    assert "street" not in report["test"]["per_scenery"]


def test_a_folder_the_split_deals_from_is_refused_as_extra_training_data(quadrant_split, tmp_path):
    result = seed_network_train(
        "--split", quadrant_split, "--extra-train", quadrant_split.parent / "data", weights=tmp_path
    )
    assert result.returncode != 0
    assert "the split already deals this folder to validation and test" in result.stderr
    assert not (tmp_path / "seed_tiny").exists()


def test_the_torchvision_imagenet_start_maps_exactly_into_the_keras_mobilenet(tmp_path):
    import torch
    import torchvision

    from detection.core.state_export import state_export

    torch.manual_seed(0)
    features = torchvision.models.mobilenet_v2().features.eval()
    with torch.no_grad():  # BatchNorm statistics unlike the defaults, so swapping any two of them would show
        for module in features.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5), module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.3, 0.3), module.running_var.uniform_(0.5, 2.0)
    # The file as the start comes: another key naming, torchvision's tensor order.
    torch.save({f"net.{i}": value for i, value in enumerate(features.state_dict().values())}, tmp_path / "start.pt")
    state_export(checkpoint=tmp_path / "start.pt", out=tmp_path / "start.npz")
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = tf_child(
        "-m", "tests.keras_models", "mobilenet", tmp_path / "start.npz", tmp_path / "x.npy", tmp_path / "keras.npy"
    )
    assert mapped.returncode == 0, mapped.stderr[-3000:]

    # Keras pads stride-2 convolutions at the bottom and right only ("same"), torchvision on every side: the
    # reference pads like Keras, so the comparison checks the weights, not the padding convention.
    for module in features.modules():
        if isinstance(module, torch.nn.Conv2d) and module.stride == (2, 2):
            module.padding = (0, 0)
            module.register_forward_pre_hook(lambda _, args: (torch.nn.functional.pad(args[0], (0, 1, 0, 1)),))
    with torch.no_grad():
        reference = features(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    keras_features = np.load(tmp_path / "keras.npy")
    assert keras_features.shape == reference.shape == (2, 2, 2, 1280)
    assert np.abs(keras_features - reference).max() <= 1e-4 * np.abs(reference).max()


def test_detect_command_scores_with_a_keras_model(keras_weights_dir, tmp_path):
    decisive_image().save(tmp_path / "ai.png")
    image_with_artefact(np.random.default_rng(8), size=TINY_SIZE, quadrant=None).save(tmp_path / "real.png")
    result = tf_child(
        "manage.py",
        "detect",
        "--model",
        KERAS_MODEL,
        "--json",
        tmp_path,
        env={"DETECTOR_WEIGHTS_DIR": str(keras_weights_dir)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = {Path(line["path"]).name: line["ai_probability"] for line in map(json.loads, result.stdout.splitlines())}
    assert scores["ai.png"] > 0.5 > scores["real.png"]


@pytest.mark.django_db
def test_a_keras_second_opinion_runs_beside_pytorch_in_a_tensorflow_child_and_points_at_the_decisive_quarter(
    keras_settings, settings, contributor, submission_make, django_capture_on_commit_callbacks
):
    from detection.core.keras.proxy import KerasDetectorProxy
    from detection.runtime import detector_get
    from detection.selectors import heatmap_layers
    from moderation.analysis import reanalysis_run

    settings.DETECTOR_DEFAULT_MODEL = TINY_MODEL  # PyTorch in this process first
    submission = submission_make(contributor=contributor, data=png_bytes(decisive_image()))
    assert submission.detections.get().model_name == TINY_MODEL

    with django_capture_on_commit_callbacks(execute=True):  # the flagged opinion's heatmap, rendered after it
        detection = reanalysis_run(submission_id=submission.pk, model_name=KERAS_MODEL)
    detector = detector_get(name=KERAS_MODEL)
    assert isinstance(detector, KerasDetectorProxy)
    assert detection.ai_probability > 0.5 and detection.verdict in {"ai", "uncertain"}
    assert Heatmap.objects.filter(detection=detection, layer="conv2").exists()
    assert [choice.layer for choice in heatmap_layers(detection=detection)] == ["conv1", "conv2", "conv4"]
    heat = detector.heatmap(decisive_image())
    assert heat.shape == (TINY_SIZE, TINY_SIZE) and float(np.percentile(heat, 99)) == pytest.approx(1.0, abs=1e-3)
    assert peak_quadrant(heat) == DECISIVE


@pytest.mark.django_db
def test_a_pytorch_job_in_a_keras_process_fails_with_the_reason_instead_of_loading_torch(
    keras_settings, settings, contributor, submission_make
):
    settings.DETECTOR_FRAMEWORK = "keras"
    settings.DETECTOR_DEFAULT_MODEL = TINY_MODEL
    submission = submission_make(contributor=contributor)
    assert submission.state == State.FAILED
    assert submission.failure_reason == f"Analysis error: {TINY_MODEL} is served by the gpu queue's workers"


@pytest.fixture
def keras_worker(keras_weights_dir: Path, media_in_tmp: Path, tmp_path: Path):
    env = {
        "DETECTOR_FRAMEWORK": "keras",
        "DETECTOR_WEIGHTS_DIR": str(keras_weights_dir),
        "DETECTOR_DEFAULT_MODEL": KERAS_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    with worker_running(queues="keras", env=env, log_path=tmp_path / "keras-worker.log") as process:
        yield process


def wait_for(condition, worker, *, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.worker
# Serialized rollback: the worker needs committed data, and the migrations' role groups put back for it (a
# browser test before may have emptied them), and leaves them for the transactional tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_keras_model_analyses_uploads_on_its_own_queue_and_tensorflow_worker_without_torch(
    client, contributor, keras_settings, keras_worker
):
    import redis

    from detection.core.scoring import overlay_render
    from detection.runtime import detector_get
    from detection.services import heatmap_request
    from moderation.tasks import submission_reanalyse

    # At start the worker checked the model of its queue, and only it: the PyTorch one is the gpu queue's.
    assert list(SelfTestResult.objects.values_list("model_name", "passed")) == [(KERAS_MODEL, True)]
    always_flag = {scenery: {"low": 0.0, "high": 0.0} for scenery in Scenery.values}
    ModelSetting.objects.create(model_name=KERAS_MODEL, thresholds=always_flag)
    response = login(client, contributor).post(
        reverse("upload"),
        {"files": [upload_file("quarter.png", png_bytes(decisive_image()), "image/png")], "scenery": "forest"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    submission = Submission.objects.get()
    wait_for(lambda: Submission.objects.get().state not in {State.QUEUED, State.ANALYSING}, keras_worker)
    submission.refresh_from_db()
    assert submission.state == State.FLAGGED, submission.failure_reason
    detection = submission.detections.get()
    assert detection.model_name == KERAS_MODEL

    # The worker's overlay is the Grad-CAM this process gets from its own TensorFlow child, same rendering.
    detector = detector_get(name=KERAS_MODEL)
    canonical = detector.canonical(decisive_image())
    rendered = np.asarray(Image.open(detection.heatmaps.get(layer="conv2").image), dtype=np.float32)
    expected = np.asarray(Image.open(io.BytesIO(overlay_render(canonical, detector.heatmap_array(canonical)))))
    assert np.abs(rendered - expected).mean() < 1.0

    heatmap_request(detection_id=detection.pk, layer="conv4")  # a moderator picks another layer
    wait_for(lambda: Heatmap.objects.filter(detection=detection, layer="conv4").exists(), keras_worker, seconds=60)

    # A PyTorch job that reaches the keras queue is handed to the gpu queue, never run here.
    queue = redis.Redis.from_url(BROKER_URL)
    queue.delete("gpu")
    submission_reanalyse.apply_async((submission.pk, TINY_MODEL), queue="keras")
    wait_for(lambda: queue.llen("gpu") == 1, keras_worker, seconds=30)
    queue.delete("gpu")
    assert not Detection.objects.filter(model_name=TINY_MODEL).exists()

    libraries = Path(f"/proc/{keras_worker.pid}/maps").read_text()
    assert "libtensorflow" in libraries and "libtorch" not in libraries
