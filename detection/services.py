"""Writes for the detection domain: scoring an image, reading its provenance, rendering heatmaps.

Detection never moves a submission between states: moderation (the lifecycle's owner) calls
`analyses_compute` and decides what the score and the evidence mean for the submission.
"""

import base64
import io
import logging
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from common.deferred import TRANSIENT_ERRORS, task_ask, task_publish, task_send
from detection.core.card import ModelCard
from detection.core.files import NoTrainedWeights
from detection.core.preprocess import image_canonical, image_decode
from detection.core.registry import heatmap_default_layer
from detection.core.selftest import SelfTestFailed
from detection.core.verdicts import verdict_stable
from detection.models import Detection, Evidence, Heatmap, Scenery, SelfTestResult
from detection.runtime import TORCH_QUEUE, ServedElsewhere
from detection.selectors import (
    detections_reusable_get,
    heatmap_queue,
    model_active_name,
    model_card_get,
    scenery_head_card,
    threshold_overrides_get,
    thresholds_for,
)
from provenance import Finding, declares_ai, provenance_extract

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from detection.core.scoring import ScoringBase

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class Subject(Protocol):
    """What detection needs of a submission; moderation's Submission is one."""

    pk: int
    sha256: str
    scenery: str
    original: FieldFile


class AnalysisRefused(Exception):
    """The image cannot be analysed (no trained weights, too slow, an error in the model): the reason says
    why, for the submission's failure reason. Never a made-up score."""


@dataclass(frozen=True)
class Analysis:
    """What detection returns: the active model's score, and the provenance evidence."""

    detection: Detection
    evidence: list[Evidence]
    suggested_scenery: str = ""  # '' when no scenery head serves here

    @property
    def declared_ai(self) -> Evidence | None:
        """The stored finding whose metadata declares generative AI, if any (provenance's one rule)."""
        return declares_ai(findings=self.evidence)


def _original_read(submission: Subject) -> bytes:
    with default_storage.open(submission.original.name, "rb") as fh:
        return fh.read()


def image_decoded(*, data: bytes) -> "Image.Image":
    return image_decode(data, max_pixels=settings.UPLOAD_MAX_PIXELS)


def _image_load(submission: Subject) -> "Image.Image":
    return image_decoded(data=_original_read(submission))


def selftest_record(*, model_name: str, passed: bool, model_version: str = "", detail: str = "") -> SelfTestResult:
    """Keep the latest self-test outcome of `model_name` on this host."""
    result, _ = SelfTestResult.objects.update_or_create(
        model_name=model_name,
        host=socket.gethostname(),
        defaults={"model_version": model_version, "passed": passed, "detail": detail, "checked_at": timezone.now()},
    )
    return result


def _card_version(name: str) -> str:
    card = model_card_get(name=name)
    return str(card.version) if card else ""


def _detector_serving(name: str):
    """The loaded detector; a model refused by its self-test is recorded as refused on this host first."""
    from detection.runtime import detector_get  # torch boundary: the worker's path only

    try:
        return detector_get(name=name)
    except SelfTestFailed as exc:
        selftest_record(model_name=name, passed=False, model_version=_card_version(name), detail=str(exc))
        raise


def detector_selftest_run(*, model_names: Sequence[str], record: bool = True) -> list[SelfTestResult]:
    """Load each model as this process serves it, golden-output check included, and record the outcome
    (unsaved results when not `record`: a check before the database exists); a model this process does not
    serve (no weights here, the other framework's worker) is skipped."""
    from detection.runtime import detector_get  # torch boundary: the worker's path only

    results = []
    for name in model_names:
        try:
            outcome = {"model_version": detector_get(name=name).version, "passed": True, "detail": ""}
        except SelfTestFailed as exc:
            logger.error("%s", exc)
            outcome = {"model_version": _card_version(name), "passed": False, "detail": str(exc)}
        except (NoTrainedWeights, ServedElsewhere):
            continue
        if record:
            results.append(selftest_record(model_name=name, **outcome))
        else:
            results.append(
                SelfTestResult(model_name=name, host=socket.gethostname(), checked_at=timezone.now(), **outcome)
            )
    return results


def heatmap_render(*, detection_id: int, layer: str | None = None) -> Heatmap:
    """The heatmap overlay of a detection (Grad-CAM or occlusion, after its model's architecture) at a layer
    (the model's default when None), made at most once."""
    detection = Detection.objects.select_related("submission").get(pk=detection_id)
    detector = _detector_serving(detection.model_name)
    if detector.version != detection.model_version:
        raise ValueError(f"{detection.model_name} is now version {detector.version}, not {detection.model_version}")
    layer = layer or heatmap_default_layer(detector.card)
    existing = Heatmap.objects.filter(detection=detection, layer=layer).first()
    if existing:
        return existing
    earlier = Heatmap.objects.filter(detection=detection.reused_from_id, layer=layer).first()
    if earlier:  # identical bytes, same model version: the same picture
        return Heatmap.objects.get_or_create(detection=detection, layer=layer, defaults={"image": earlier.image.name})[
            0
        ]
    png = detector.overlay(_image_load(detection.submission), layer=layer)
    name = f"heatmaps/{detection.submission_id}/{detection.model_name}-{detection.model_version}-{layer}.png"
    # A file without a row was left by a run that was killed before recording it: replace it, not beside it.
    if default_storage.exists(name):
        default_storage.delete(name)
    name = default_storage.save(name, ContentFile(png))
    heatmap, created = Heatmap.objects.get_or_create(detection=detection, layer=layer, defaults={"image": name})
    if not created:
        default_storage.delete(name)
    return heatmap


def detection_compute(*, submission: Subject, model_name: str) -> Detection:
    """Score a submission with one model, once per model version (a redelivered task finds its earlier row).

    Heatmaps are not made here: the verdict never waits for one (see heatmap_schedule).
    """
    detector = _detector_serving(model_name)
    [scored] = _detections_scored(
        submissions=[submission], image_of=_image_load, model_name=model_name, detector=detector
    )
    if isinstance(scored, Exception):
        raise scored
    return scored.detection


@dataclass(frozen=True)
class _Scored:
    detection: Detection
    embedding: "np.ndarray | None"  # the frozen encoder's, when the image was scored now by a model on one


@dataclass(frozen=True)
class _Original:
    """A submission's original, read, decoded and its metadata parsed (on a thread of the batch's pool)."""

    image: "Image.Image"
    findings: list[Finding]


def _original_open(submission: Subject) -> _Original:
    data = _original_read(submission)
    return _Original(image=image_decoded(data=data), findings=provenance_extract(data=data))


def _attempt(function: Callable[[T], R], argument: T) -> R | Exception:
    """What `function` returns, or the error it raised, so one item's failure stays that item's."""
    try:
        return function(argument)
    except Exception as exc:
        return exc


def _transient_raise(outcomes: Sequence[object]) -> None:
    # A transient error means the database or storage was out of reach: the task retries the whole batch.
    for outcome in outcomes:
        if isinstance(outcome, TRANSIENT_ERRORS):
            raise outcome


def _images_score(
    *, detector: "ScoringBase", images: Sequence["Image.Image"]
) -> list[tuple[float, float | None, "np.ndarray | None"] | Exception]:
    """One network call for the batch; if it fails, each image alone, so a bad image fails alone."""
    try:
        return list(detector.predict_checked_embedded(images))
    except Exception as exc:
        if isinstance(exc, (*TRANSIENT_ERRORS, SoftTimeLimitExceeded)) or len(images) == 1:
            raise
    return [_attempt(lambda image: detector.predict_checked_embedded([image])[0], image) for image in images]


def _detections_scored(
    *,
    submissions: Sequence[Subject],
    image_of: Callable[[Subject], "Image.Image"],
    model_name: str,
    detector: "ScoringBase",
) -> list[_Scored | Exception]:
    """Each submission's Detection by this model version: its own earlier row (a redelivered task), one reused
    from identical bytes, or scored now, every image not scored before in one network call (`image_of` is
    asked only for those). A row's latency is its share of the batch's scoring time."""
    earlier = {
        detection.submission_id: detection
        for detection in Detection.objects.filter(
            submission__in=[submission.pk for submission in submissions],
            model_name=model_name,
            model_version=detector.version,
        )
    }
    pending = [submission for submission in submissions if submission.pk not in earlier]
    reusable_by_bytes = detections_reusable_get(
        sha256s=[submission.sha256 for submission in pending], model_name=model_name, model_version=detector.version
    )
    reusable = {submission.pk: reusable_by_bytes.get(submission.sha256) for submission in pending}
    overrides = threshold_overrides_get(model_name=model_name)
    fresh = [i for i, submission in enumerate(submissions) if submission.pk in reusable and not reusable[submission.pk]]
    images = [image_of(submissions[i]) for i in fresh]
    started = time.perf_counter()
    outcomes = dict(zip(fresh, _images_score(detector=detector, images=images), strict=True))
    latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(fresh))
    results: list[_Scored | Exception] = []
    for i, submission in enumerate(submissions):
        if submission.pk in earlier:
            results.append(_Scored(detection=earlier[submission.pk], embedding=None))
            continue
        outcome = outcomes.get(i)
        if isinstance(outcome, Exception):
            results.append(outcome)
            continue
        reused = reusable[submission.pk]
        probability, variant, embedding = (
            outcome if outcome is not None else (reused.ai_probability, reused.variant_probability, None)
        )
        detection = _detection_record(
            submission=submission,
            model_name=model_name,
            detector=detector,
            overrides=overrides,
            scores=(probability, variant),
            latency_ms=latency_ms if outcome is not None else 0.0,
            reused_from=reused,
        )
        results.append(_Scored(detection=detection, embedding=embedding))
    return results


def _detection_record(
    *,
    submission: Subject,
    model_name: str,
    detector: "ScoringBase",
    overrides: dict[str, dict],
    scores: tuple[float, float | None],
    latency_ms: float,
    reused_from: Detection | None,
) -> Detection:
    low, high = thresholds_for(overrides=overrides, card=detector.card, scenery=submission.scenery)
    probability, variant = scores
    detection, _ = Detection.objects.get_or_create(
        submission=submission,
        model_name=model_name,
        model_version=detector.version,
        defaults={
            "ai_probability": probability,
            "verdict": verdict_stable(probability, variant, low=low, high=high),
            "variant_probability": variant,
            "threshold_low": low,
            "threshold_high": high,
            "latency_ms": latency_ms,
            "reused_from": reused_from,
        },
    )
    return detection


def evidence_record(*, submission: Subject, findings: Sequence[Finding] | None = None) -> list[Evidence]:
    """Keep the provenance metadata once per submission (`findings` when the caller parsed the original already);
    the extractor never raises on hostile metadata."""
    if not submission.evidence.exists():
        if findings is None:
            findings = provenance_extract(data=_original_read(submission))
        Evidence.objects.bulk_create(
            [
                Evidence(
                    submission=submission, kind=f.kind, key=f.key, value=f.value, suggests=f.suggests, detail=f.detail
                )
                for f in findings
            ],
            ignore_conflicts=True,
        )
    return list(submission.evidence.all())


def analyses_compute(*, submissions: Sequence[Subject]) -> list[Analysis | AnalysisRefused]:
    """The active model's score and the provenance evidence of each submission of a worker's batch: originals
    are read, decoded and parsed on a thread pool, then every image not scored before goes through the model in
    one call. A submission whose file or score fails gets an AnalysisRefused in its slot and the rest go on.

    Transient errors propagate so the caller's task retries the batch, ServedElsewhere so it forwards the job to
    the workers of the model's framework.
    """
    try:
        model_name = model_active_name()
        detector = _detector_serving(model_name)
        with ThreadPoolExecutor(max_workers=settings.ANALYSIS_DECODE_THREADS) as pool:
            originals = list(pool.map(partial(_attempt, _original_open), submissions))
        _transient_raise(originals)
        readable = [i for i, original in enumerate(originals) if isinstance(original, _Original)]
        decoded = {submissions[i].pk: originals[i].image for i in readable}
        scored = dict(
            zip(
                readable,
                _detections_scored(
                    submissions=[submissions[i] for i in readable],
                    image_of=lambda submission: decoded[submission.pk],
                    model_name=model_name,
                    detector=detector,
                ),
                strict=True,
            )
        )
        _transient_raise(list(scored.values()))
        usable = [i for i in readable if isinstance(scored[i], _Scored)]
        suggested = dict(
            zip(
                usable,
                scenery_suggestions_compute(
                    images=[originals[i].image for i in usable],
                    detector=detector,
                    embeddings=[scored[i].embedding for i in usable],
                ),
                strict=True,
            )
        )
        return [
            _analysis_made(
                submission=submission, original=originals[i], scored=scored.get(i), suggested=suggested.get(i, "")
            )
            for i, submission in enumerate(submissions)
        ]
    except (*TRANSIENT_ERRORS, ServedElsewhere):
        raise
    except Exception as exc:
        return [_refusal(exc, submission=submission) for submission in submissions]


def _analysis_made(
    *, submission: Subject, original: _Original | Exception, scored: _Scored | Exception | None, suggested: str
) -> Analysis | AnalysisRefused:
    failure = original if isinstance(original, Exception) else scored
    if isinstance(failure, Exception):
        return _refusal(failure, submission=submission)
    evidence = evidence_record(submission=submission, findings=original.findings)
    return Analysis(detection=scored.detection, evidence=evidence, suggested_scenery=suggested)


def _refusal(exc: Exception, *, submission: Subject) -> AnalysisRefused:
    if isinstance(exc, NoTrainedWeights):
        return AnalysisRefused(str(exc))
    if isinstance(exc, SoftTimeLimitExceeded):
        return AnalysisRefused("Analysis took longer than its time limit.")
    logger.error("analysis of submission %s failed", submission.pk, exc_info=exc)
    return AnalysisRefused(f"Analysis error: {exc.__class__.__name__}: {exc}")


def _same_encoder(card: ModelCard, head_card: dict) -> bool:
    """Whether a model's embeddings are the ones the head was fitted on: same encoder file, same canonical size."""
    return (card.encoder_sha256, card.image_size) == (
        head_card["encoder_sha256"],
        head_card["image_size"],
    )


def scenery_suggestions_compute(
    *,
    images: Sequence["Image.Image"],
    detector: "ScoringBase | None" = None,
    embeddings: "Sequence[np.ndarray | None] | None" = None,
) -> list[str]:
    """The scenery the head sees in each image (`other` when unsure): from the embedding `detector` computed with
    the head's encoder where there is one (the CLIP probe's analysis), the others in one pass of that encoder
    (a CNN's batch, reused results); '' each where no head is shipped, the encoder is not installed or this
    process runs no torch. A suggestion never fails an analysis."""
    import numpy as np

    from detection.runtime import detector_get, scenery_head_get  # torch boundary: the worker's path only

    unsuggested = [""] * len(images)
    loaded = scenery_head_get() if settings.DETECTOR_FRAMEWORK == "torch" else None
    if loaded is None or not images:
        return unsuggested
    head, head_card = loaded
    reusable = embeddings is not None and detector is not None and _same_encoder(detector.card, head_card)
    known = list(embeddings) if reusable else [None] * len(images)
    try:
        missing = [i for i, embedding in enumerate(known) if embedding is None]
        if missing:
            encoder = detector_get(name=head_card["encoder_model"])
            if not _same_encoder(encoder.card, head_card):
                return unsuggested
            encoded = encoder.embeddings_arrays([encoder.canonical(images[i]) for i in missing])
            for i, row in zip(missing, encoded, strict=True):
                known[i] = row[None]
        return [scenery for scenery, _ in head.suggest(np.concatenate(known))]
    except (NoTrainedWeights, ServedElsewhere):
        return unsuggested
    except (*TRANSIENT_ERRORS, SoftTimeLimitExceeded):
        raise
    except Exception:
        logger.exception("no scenery suggestion")
        return unsuggested


def scenery_suggestion_ask(*, data: bytes) -> str:
    """Ask a model worker which scenery an image shows, before it is uploaded (the upload page), waiting at most
    SCENERY_SUGGEST_WAIT_SECONDS; '' when no answer comes in time (no head shipped, workers busy or away).

    Only the canonical square the head looks at travels, in the message itself: nothing is stored for it."""
    head_card = scenery_head_card()
    if head_card is None:
        return ""
    canonical = image_canonical(image_decoded(data=data), size=head_card["image_size"])
    buffer = io.BytesIO()
    canonical.save(buffer, format="PNG")
    answer = task_ask(
        "detection.tasks.scenery_suggest",
        base64.b64encode(buffer.getvalue()).decode(),
        queue=TORCH_QUEUE,
        timeout=settings.SCENERY_SUGGEST_WAIT_SECONDS,
    )
    return answer if answer in Scenery.values else ""


def heatmap_request(*, detection_id: int, layer: str, background: bool = False) -> None:
    """Render a heatmap on the workers of the model's heatmap queue. Asked for by a moderator: sent now,
    BrokerUnavailable when the broker is away (nothing records the request, so the moderator must be told rather
    than left waiting). In the `background` (a flagged item's default layer, before anyone asked): sent once the
    caller commits, at background priority, so a worker serving analyses too takes it only when no analysis
    waits; the sweeper re-asks a lost one."""
    model_name = Detection.objects.values_list("model_name", flat=True).get(pk=detection_id)
    queue = heatmap_queue(name=model_name)
    if background:
        task_send("detection.tasks.heatmap_make", detection_id, layer, queue=queue, background=True)
    else:
        task_publish("detection.tasks.heatmap_make", detection_id, layer, queue=queue)


def heatmap_schedule(*, detection: Detection) -> None:
    """The default-layer heatmap of a detection a moderator will look at, in the background: usually there
    before the item is opened; the review page shows it as rendering until then."""
    card = model_card_get(name=detection.model_name)
    if card is not None:
        heatmap_request(detection_id=detection.pk, layer=heatmap_default_layer(card), background=True)
