"""Reads for the detection domain. Nothing here imports torch: web processes use these."""

import json
from pathlib import Path

from django.conf import settings

from detection.core.files import KERAS_ARCH
from detection.models import Detection, ModelSetting
from detection.runtime import KERAS_QUEUE, TORCH_QUEUE


def model_active_name() -> str:
    active = ModelSetting.objects.filter(is_active=True).values_list("model_name", flat=True).first()
    return active or settings.DETECTOR_DEFAULT_MODEL


def model_card_get(*, name: str) -> dict | None:
    """The shipped model card, or None when that model has no trained weights."""
    path = Path(settings.DETECTOR_WEIGHTS_DIR) / name / "card.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def model_queue(*, name: str) -> str:
    """The Celery queue whose workers run this model: Keras bundles have their own TensorFlow worker."""
    card = model_card_get(name=name)
    return KERAS_QUEUE if card and card["arch"] == KERAS_ARCH else TORCH_QUEUE


def model_names_available() -> list[str]:
    root = Path(settings.DETECTOR_WEIGHTS_DIR)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/card.json"))


def thresholds_for(*, model_name: str, card: dict, scenery: str) -> tuple[float, float]:
    """(low, high): the admin's override for this scenery, else the model card's calibrated band."""
    setting = ModelSetting.objects.filter(model_name=model_name).first()
    override = (setting.thresholds if setting else {}).get(scenery)
    band = override or card["thresholds"]
    return float(band["low"]), float(band["high"])


def detection_reusable_get(*, sha256: str, model_name: str, model_version: str) -> Detection | None:
    """An earlier result of this model version on identical bytes: it is not analysed twice."""
    return (
        Detection.objects.filter(
            submission__sha256=sha256, model_name=model_name, model_version=model_version, reused_from=None
        )
        .order_by("created_at")
        .first()
    )
