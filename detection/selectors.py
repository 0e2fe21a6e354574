"""Reads for the detection domain. Nothing here imports torch: web processes use these."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import F, Prefetch

from detection.core.card import ModelCard
from detection.core.files import CARD_FILE, card_load
from detection.core.registry import (
    TENSORFLOW,
    HeatmapMethod,
    architecture_get,
    heatmap_default_layer,
    heatmap_layer_names,
)
from detection.core.scenery import HEAD_CARD
from detection.models import Detection, Heatmap, ModelSetting, SelfTestResult, ThresholdChange, Verdict
from detection.runtime import HEATMAP_QUEUE, KERAS_QUEUE, TORCH_QUEUE


def model_active_name() -> str:
    active = ModelSetting.objects.filter(is_active=True).values_list("model_name", flat=True).first()
    return active or settings.DETECTOR_DEFAULT_MODEL


def model_card_get(*, name: str) -> ModelCard | None:
    """The shipped model card, or None when that model has no trained weights."""
    directory = Path(settings.DETECTOR_WEIGHTS_DIR) / name
    if not (directory / CARD_FILE).is_file():
        return None
    return card_load(directory=directory)


def scenery_head_card() -> dict | None:
    """The shipped scenery head's card (manage.py train_scenery), or None when there is none."""
    path = Path(settings.SCENERY_HEAD_DIR) / HEAD_CARD
    return json.loads(path.read_text()) if path.is_file() else None


def model_queue(*, name: str) -> str:
    """The Celery queue whose workers run this model: Keras bundles have their own TensorFlow worker."""
    card = model_card_get(name=name)
    return KERAS_QUEUE if card and architecture_get(card.arch).framework == TENSORFLOW else TORCH_QUEUE


def heatmap_queue(*, name: str) -> str:
    """The Celery queue whose workers render this model's heatmaps: the Keras worker its own, a heatmap worker
    the PyTorch models' (see HEATMAP_QUEUE)."""
    queue = model_queue(name=name)
    return HEATMAP_QUEUE if queue == TORCH_QUEUE else queue


def model_names_available() -> list[str]:
    root = Path(settings.DETECTOR_WEIGHTS_DIR)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{CARD_FILE}"))


def selftest_results(*, model_name: str) -> list[SelfTestResult]:
    """The latest self-test of the model's current version on each host that checked it."""
    card = model_card_get(name=model_name)
    version = str(card.version) if card else ""
    return list(SelfTestResult.objects.filter(model_name=model_name, model_version=version))


@dataclass(frozen=True)
class Health:
    status: str  # "ok", "refused" (the active model failed its self-test on a host), "unavailable" (no weights)
    model: str
    hosts_passed: int
    hosts_refused: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def health_get() -> Health:
    model = model_active_name()
    results = selftest_results(model_name=model)
    refused = sum(not result.passed for result in results)
    status = "unavailable" if model not in model_names_available() else "refused" if refused else "ok"
    return Health(status=status, model=model, hosts_passed=len(results) - refused, hosts_refused=refused)


def threshold_overrides_get(*, model_name: str) -> dict[str, dict]:
    """The admin's threshold bands of a model by scenery ({} when none was set)."""
    setting = ModelSetting.objects.filter(model_name=model_name).first()
    return setting.thresholds if setting else {}


def thresholds_for(*, overrides: dict[str, dict], card: ModelCard, scenery: str) -> tuple[float, float]:
    """(low, high): the admin's override for this scenery (`overrides`, threshold_overrides_get's), else the
    model card's calibrated band."""
    band = overrides.get(scenery) or card.thresholds.band()
    return float(band["low"]), float(band["high"])


def threshold_changes(*, model_name: str, limit: int = 20) -> list[ThresholdChange]:
    """The model's latest threshold changes, newest first; only the newest can be reverted."""
    return list(ThresholdChange.objects.filter(model_name=model_name).select_related("actor")[:limit])


def detections_reusable_get(*, sha256s: Iterable[str], model_name: str, model_version: str) -> dict[str, Detection]:
    """By sha256, the earliest result of this model version on those bytes: identical bytes are not analysed
    twice."""
    earliest: dict[str, Detection] = {}
    for detection in (
        Detection.objects.filter(
            submission__sha256__in=set(sha256s), model_name=model_name, model_version=model_version, reused_from=None
        )
        .annotate(bytes_sha256=F("submission__sha256"))
        .order_by("created_at")
    ):
        earliest.setdefault(detection.bytes_sha256, detection)
    return earliest


@dataclass(frozen=True)
class LayerChoice:
    layer: str
    heatmap: Heatmap | None
    is_default: bool


def heatmap_layers(*, detection: Detection) -> list[LayerChoice]:
    """The heatmap layers of the detection's architecture, each with its heatmap when already rendered.

    Reads `detection.heatmaps.all()`, so prefetch it; a model without a card lists only existing heatmaps.
    """
    return _layer_choices(detection, model_card_get(name=detection.model_name))


def _layer_choices(detection: Detection, card: ModelCard | None) -> list[LayerChoice]:
    existing = {h.layer: h for h in detection.heatmaps.all()}
    layers = (heatmap_layer_names(card) if card else []) or sorted(existing)
    default = heatmap_default_layer(card) if card else None
    return [LayerChoice(layer=name, heatmap=existing.get(name), is_default=name == default) for name in layers]


FLAGGING_VERDICTS = {Verdict.AI, Verdict.UNCERTAIN}


@dataclass(frozen=True)
class HeatmapViewer:
    detections: list[Detection]
    detection: Detection | None
    layers: list[LayerChoice]
    layer: LayerChoice | None
    pending: str | None  # the default layer a flagging detection's heatmap is still rendering at
    method: HeatmapMethod | None  # how the shown detection's model draws its maps; None without its card


def heatmap_viewer(*, submission_id: int, detection_id: str = "", layer: str = "") -> HeatmapViewer:
    """Every model's detection, and which heatmap to show: the asked-for detection and layer if rendered,
    else the first detection with a heatmap, at its architecture's default layer when rendered."""
    detections = list(
        Detection.objects.filter(submission_id=submission_id).prefetch_related(
            Prefetch("heatmaps", queryset=Heatmap.objects.order_by("layer"))
        )
    )
    shown = next((d for d in detections if str(d.pk) == detection_id), None) or next(
        (d for d in detections if d.heatmaps.all()), detections[0] if detections else None
    )
    card = model_card_get(name=shown.model_name) if shown else None
    layers = _layer_choices(shown, card) if shown else []
    rendered = [c for c in layers if c.heatmap]
    chosen = next((c for c in rendered if c.layer == layer), None) or next(
        (c for c in rendered if c.is_default), rendered[0] if rendered else None
    )
    pending = None
    if shown is not None and shown.verdict in FLAGGING_VERDICTS:
        pending = next((c.layer for c in layers if c.is_default and not c.heatmap), None)
    method = architecture_get(card.arch).heatmap if card else None
    return HeatmapViewer(
        detections=detections, detection=shown, layers=layers, layer=chosen, pending=pending, method=method
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def leave_source_out_get(*, card: ModelCard) -> dict | None:
    """What the model settings page says a model is worth on collections and generators it never saw: the
    headline figures and a row per held-out collection and generator family, worst first."""
    lso = card.leave_source_out
    if not lso:
        return None
    collections = sorted(
        (
            (unit.removeprefix("real:"), value["n"], _percent(value["rate"]), _percent(lso["to_human"][unit]["rate"]))
            for unit, value in lso["false_flags"].items()
        ),
        key=lambda row: -lso["false_flags"][f"real:{row[0]}"]["rate"],
    )
    generators = sorted(
        ((unit.removeprefix("ai:"), value["n"], _percent(value["rate"])) for unit, value in lso["recall"].items()),
        key=lambda row: lso["recall"][f"ai:{row[0]}"]["rate"],
    )
    at = lso.get("recall_at_false_flags", {})
    return {
        "folds": lso["k"],
        "minimum_n": lso["minimum_n"],
        "false_flags_mean": _percent(lso["false_flags_mean"]),
        "false_flags_worst": _percent(lso["false_flags_worst"]),
        "worst_collection": lso.get("worst_collection"),
        "to_human": _percent(lso["to_human_all"]),
        "recall_mean": _percent(lso["recall_mean"]),
        "recall_worst": _percent(lso["recall_worst"]),
        "roc_auc": "n/a" if lso["roc_auc"] is None else f"{lso['roc_auc']:.3f}",
        "recall_at_1": _percent(at.get("0.01")),
        "recall_at_3": _percent(at.get("0.03")),
        "collections": collections,
        "generators": generators,
    }
