"""Writes for the moderation domain. Every state change goes through submission_transition."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
from common.deferred import after_commit, task_publish
from common.errors import Conflict, Forbidden, Invalid
from detection.selectors import model_active_name, model_queue
from detection.services import scenery_suggestion_ask
from moderation import lifecycle
from moderation.counters import submission_counts_refresh
from moderation.events import submission_event_emit
from moderation.images import UploadRefused, image_inspect
from moderation.models import Appeal, Decision, DecisionReason, Scenery, State, Submission
from webhooks.models import Event

logger = logging.getLogger(__name__)


CLAIM_DURATION = timedelta(minutes=3)


class TransitionRefused(Conflict):
    """The submission is no longer in a state that allows this; someone or something got there first."""


class ClaimHeld(TransitionRefused):
    """Another moderator has the item open; deciding it now would overrule them unseen."""


class AppealRefused(Forbidden):
    """The appeal is not allowed: not the contributor's, already appealed once, or the same moderator."""


def submission_transition(
    *,
    submission_id: int,
    action: str,
    to_state: str | None = None,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    **fields: object,
) -> Submission:
    """Move a submission as `action` allows (lifecycle.TRANSITIONS), under a row lock, so two writers never
    both win. `to_state` picks one of the action's to-states; it may be left out when there is only one."""
    rule = lifecycle.TRANSITIONS[action]
    to_state = to_state or (rule.to_states[0] if len(rule.to_states) == 1 else None)
    if to_state not in rule.to_states:
        raise ValueError(f"{action!r} cannot lead to {to_state!r}.")
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if not lifecycle.can(action, submission.state):
            allowed = " or ".join(rule.from_states)
            raise TransitionRefused(
                f"Submission #{submission_id} is {submission.get_state_display().lower()}, not {allowed}."
            )
        from_state = submission.state
        fields = {"state": to_state, "state_changed_at": timezone.now(), **fields}
        Submission.objects.filter(pk=submission_id).update(**fields)
        for name, value in fields.items():
            setattr(submission, name, value)
        # The statistics count the submission under its state, verdict and spot check: same transaction.
        submission_counts_refresh(submission_id=submission_id)
        audit_record(
            submission_id=submission_id,
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
        )
    return submission


def _analysis_publish(submission_id: int) -> None:
    # To the workers of the active model's framework (a Keras bundle has its own TensorFlow worker). Called in
    # the transaction that makes the submission queued, so it is queued exactly when the broker took its message.
    task_publish("moderation.tasks.submission_analyse", submission_id, queue=model_queue(name=model_active_name()))


def submission_queue(*, submission_id: int, reason: str = "") -> Submission:
    """Hand a received submission to the analysis queue (received → queued). Raises BrokerUnavailable when the
    broker is away (it stays received, for the sweeper to re-send) and TransitionRefused when it is no longer
    received (queued by someone else first)."""
    with transaction.atomic():
        submission = submission_transition(submission_id=submission_id, action=lifecycle.Action.QUEUE, reason=reason)
        _analysis_publish(submission_id)
    return submission


def _submission_queue_after_upload(submission_id: int) -> None:
    try:
        submission_queue(submission_id=submission_id)
    except TransitionRefused:
        logger.info("submission %s was queued by the sweeper first", submission_id)


def _blob_lock(sha256: str) -> None:
    """Serialise the writers of one content address to the end of the transaction (PostgreSQL advisory lock), so
    whether a stored original is in use is known before it is deleted. SQLite serialises writers by itself."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(sha256[:15], 16)])


def upload_scenery_suggest(*, stream: IO[bytes]) -> str:
    """The scenery a model worker sees in an image about to be uploaded, for the upload page to pre-select; ''
    when no answer came in time. Raises UploadRefused for a file the upload would refuse."""
    facts = image_inspect(stream=stream, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS)
    return scenery_suggestion_ask(data=facts.data)


def submission_create(
    *,
    contributor: AbstractBaseUser,
    stream: IO[bytes],
    original_name: str,
    scenery: str,
    declared_ai: bool = False,
) -> Submission:
    """Validate one upload by its content, store the original bytes unchanged and queue it for analysis once
    the upload has committed; with the broker away it stays received and the sweeper queues it later.

    Raises UploadRefused with a message for the contributor; a refused file leaves nothing behind.
    """
    if scenery not in Scenery.values:
        raise UploadRefused(f"Unknown scenery type {scenery!r}.")
    facts = image_inspect(stream=stream, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS)
    # Content-addressed: identical bytes are stored once, whoever uploads them.
    path = f"originals/{facts.sha256[:2]}/{facts.sha256}.{facts.extension}"
    with transaction.atomic():
        _blob_lock(facts.sha256)
        existing = Submission.objects.filter(contributor=contributor, sha256=facts.sha256).first()
        if existing:
            raise UploadRefused(f"You already uploaded this file as submission #{existing.pk}.")
        created_blob = not default_storage.exists(path)
        if created_blob:
            path = default_storage.save(path, ContentFile(facts.data))
        try:
            with transaction.atomic():
                submission = Submission.objects.create(
                    contributor=contributor,
                    original=path,
                    original_name=original_name[:255],
                    sha256=facts.sha256,
                    image_format=facts.image_format,
                    width=facts.width,
                    height=facts.height,
                    size_bytes=len(facts.data),
                    scenery=scenery,
                    declared_ai=declared_ai,
                    state=State.RECEIVED,
                    state_changed_at=timezone.now(),
                )
                audit_record(
                    submission_id=submission.pk,
                    actor=contributor,
                    action=lifecycle.Action.UPLOAD,
                    to_state=State.RECEIVED,
                )
        except Exception:
            # Still under the lock, so every committed row that uses the file is visible: delete only an unused one.
            if created_blob and not Submission.objects.filter(original=path).exists():
                default_storage.delete(path)
            raise
        # The upload is kept whatever happens to its message: received until the broker takes it.
        after_commit(partial(_submission_queue_after_upload, submission.pk), owed=f"analysis of #{submission.pk}")
    return submission


@dataclass(frozen=True)
class UploadResult:
    name: str
    submission_id: int | None = None
    error: str = ""

    def as_dict(self, *, url: str | None) -> dict:
        if self.error:
            return {"name": self.name, "ok": False, "error": self.error}
        return {"name": self.name, "ok": True, "id": self.submission_id, "url": url}


def submissions_create(
    *,
    contributor: AbstractBaseUser,
    files: Sequence[UploadedFile],
    sceneries: Sequence[str],
    declarations: Sequence[bool],
) -> list[UploadResult]:
    """A batch upload, file by file: a refused file is reported with its message and never blocks the others."""
    results = []
    for upload_file, scenery, declared_ai in zip(files, sceneries, declarations, strict=True):
        try:
            submission = submission_create(
                contributor=contributor,
                stream=upload_file,
                original_name=upload_file.name,
                scenery=scenery,
                declared_ai=declared_ai,
            )
        except UploadRefused as exc:
            results.append(UploadResult(name=upload_file.name, error=str(exc)))
        else:
            results.append(UploadResult(name=upload_file.name, submission_id=submission.pk))
    return results


def submission_requeue(
    *,
    submission_id: int,
    actor: AbstractBaseUser | None,
    reason: str = "",
    action: str = lifecycle.Action.REQUEUE,
) -> Submission:
    """Send a submission back to the analysis queue: a failed one by a moderator, a stuck one by the sweeper.
    Raises BrokerUnavailable, changing nothing, when the broker is away."""
    with transaction.atomic():
        submission = submission_transition(
            submission_id=submission_id,
            action=action,
            actor=actor,
            reason=reason,
            failure_reason="",
        )
        _analysis_publish(submission_id)
    return submission


def _decision_record(
    *,
    submission_id: int,
    moderator: AbstractBaseUser,
    outcome: str,
    reason_code: str,
    note: str,
    stage: str,
) -> Decision:
    """The one path for review and appeal decisions: reason check, claim check, transition, Decision row."""
    reason = DecisionReason.objects.filter(code=reason_code, applies_to=outcome, active=True).first()
    if reason is None:
        raise Invalid(f"{reason_code!r} is not a reason for {outcome}.", field="reason")
    to_state = State.APPROVED if outcome == Decision.Outcome.APPROVE else State.REJECTED
    with transaction.atomic():
        # Locked first so the claim read below cannot change before the transition commits.
        locked = Submission.objects.select_for_update(of=("self",)).select_related("claimed_by").get(pk=submission_id)
        if not Submission.objects.filter(lifecycle.claim_free(moderator=moderator), pk=submission_id).exists():
            raise ClaimHeld(f"Submission #{submission_id} is being reviewed by {locked.claimed_by.get_username()}.")
        submission = submission_transition(
            submission_id=submission_id,
            action=lifecycle.Action.DECIDE if stage == Decision.Stage.REVIEW else lifecycle.Action.APPEAL_DECIDE,
            to_state=to_state,
            actor=moderator,
            reason=f"{reason.label}. {note}".strip() if note else reason.label,
            claimed_by=None,
            claimed_until=None,
        )
        decision = Decision.objects.create(
            submission=submission, stage=stage, moderator=moderator, outcome=outcome, reason=reason, note=note
        )
        submission_event_emit(event=Event.SUBMISSION_DECIDED, submission_id=submission_id)
        return decision


def submission_decide(
    *,
    submission_id: int,
    moderator: AbstractBaseUser,
    outcome: str,
    reason_code: str,
    note: str = "",
) -> Decision:
    """Approve or reject a submission once. A second decision on the same item is refused."""
    return _decision_record(
        submission_id=submission_id,
        moderator=moderator,
        outcome=outcome,
        reason_code=reason_code,
        note=note,
        stage=Decision.Stage.REVIEW,
    )


@dataclass(frozen=True)
class BulkResult:
    applied: list[int]
    refused: dict[int, str]


def submissions_decide_bulk(
    *,
    submission_ids: Iterable[int],
    moderator: AbstractBaseUser,
    outcome: str,
    reason_code: str,
    note: str = "",
) -> BulkResult:
    """Decide many items one by one through submission_decide; one refusal never undoes the others."""
    applied, refused = [], {}
    for submission_id in dict.fromkeys(submission_ids):
        try:
            submission_decide(
                submission_id=submission_id, moderator=moderator, outcome=outcome, reason_code=reason_code, note=note
            )
        except (TransitionRefused, Submission.DoesNotExist) as exc:
            refused[submission_id] = str(exc) or f"Submission #{submission_id} does not exist."
        else:
            applied.append(submission_id)
    return BulkResult(applied=applied, refused=refused)


def submission_claim(*, submission_id: int, moderator: AbstractBaseUser) -> bool:
    """Hold an item for CLAIM_DURATION (or renew one's own hold); False when another moderator holds it.

    A single conditional UPDATE, so of two moderators opening the same item at once exactly one wins.
    """
    now = timezone.now()
    return bool(
        Submission.objects.filter(pk=submission_id, state__in=lifecycle.TRANSITIONS[lifecycle.Action.CLAIM].from_states)
        .filter(lifecycle.claim_free(moderator=moderator))
        .update(claimed_by=moderator, claimed_until=now + CLAIM_DURATION)
    )


def submission_release(*, submission_id: int, moderator: AbstractBaseUser) -> None:
    """Give up one's own hold (the moderator left the page); someone else's is left alone."""
    Submission.objects.filter(pk=submission_id, claimed_by=moderator).update(claimed_by=None, claimed_until=None)


def appeal_create(*, submission_id: int, contributor: AbstractBaseUser, message: str) -> Appeal:
    """The contributor's single appeal against a rejection; the item goes to the appeals queue."""
    message = message.strip()
    if not message:
        raise AppealRefused("Say why the decision should be reconsidered.")
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.contributor_id != contributor.pk:
            raise AppealRefused("Only the contributor who uploaded it can appeal.")
        if Appeal.objects.filter(submission_id=submission_id).exists():
            raise AppealRefused(f"Submission #{submission_id} was already appealed; an appeal is possible once.")
        submission_transition(
            submission_id=submission_id,
            action=lifecycle.Action.APPEAL,
            actor=contributor,
            reason=message[:2000],
        )
        return Appeal.objects.create(submission=submission, contributor=contributor, message=message)


def appeal_decide(
    *, appeal_id: int, moderator: AbstractBaseUser, outcome: str, reason_code: str, note: str = ""
) -> Decision:
    """Decide an appeal, final either way; the moderator who rejected the item may not decide it."""
    appeal = Appeal.objects.get(pk=appeal_id)
    rejected_by = (
        Decision.objects.filter(submission_id=appeal.submission_id, stage=Decision.Stage.REVIEW)
        .values_list("moderator_id", flat=True)
        .first()
    )
    if rejected_by == moderator.pk:
        raise AppealRefused("You made the original decision: another moderator must decide the appeal.")
    return _decision_record(
        submission_id=appeal.submission_id,
        moderator=moderator,
        outcome=outcome,
        reason_code=reason_code,
        note=note,
        stage=Decision.Stage.APPEAL,
    )
