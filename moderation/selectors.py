"""Reads for the moderation domain."""

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import reduce
from operator import or_

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet

from audit.models import AuditEvent
from audit.selectors import audit_trail
from detection.models import Detection, Evidence
from moderation import lifecycle
from moderation.models import Appeal, Decision, DecisionReason, State, Submission, Verdict

# Each queue ordering as (field, descending) keys; the last key is unique, so a position in the queue is exact.
# Flagged items always carry a probability: plain DESC matches the partial index on every database.
QUEUE_ORDERINGS: dict[str, tuple[tuple[str, bool], ...]] = {
    "likely-ai": (("ai_probability", True), ("state_changed_at", False), ("id", False)),
    "oldest": (("state_changed_at", False), ("id", False)),
}


def _with_decisions(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """Decisions oldest first as `decisions_made`, so a template's `|last` is the final one."""
    return submissions.prefetch_related(
        Prefetch("decisions", queryset=Decision.objects.select_related("reason", "moderator"), to_attr="decisions_made")
    )


def submissions_visible_to(*, user: AbstractBaseUser) -> QuerySet[Submission]:
    """Contributors see their own submissions; moderators and admins see everyone's."""
    submissions = _with_decisions(Submission.objects.select_related("contributor", "appeal"))
    if user.has_perm("moderation.view_all_submissions"):
        return submissions
    return submissions.filter(contributor=user)


# What a contributor is told about a failed analysis, whatever the worker recorded: the recorded reason (an
# exception's text, a server path) is for moderators.
CONTRIBUTOR_FAILURE_REASON = "The analysis could not be completed; a moderator will look into it."
# Audit actions whose reasons carry the detector's scores or the metadata rule's findings.
SCORE_ACTIONS = frozenset({lifecycle.Action.ANALYSE, lifecycle.Action.REANALYSIS_REQUEST, lifecycle.Action.REANALYSE})


def scores_visible_to(*, user: AbstractBaseUser) -> bool:
    """Reviewers see the detector's scores; contributors only where CONTRIBUTORS_SEE_SCORES allows it."""
    return user.has_perm("moderation.review_submission") or settings.CONTRIBUTORS_SEE_SCORES


def submission_for_contributor(*, submission: Submission) -> Submission:
    """The submission as a contributor may read it, changed in memory only (never saved): a generic failure reason
    and, unless CONTRIBUTORS_SEE_SCORES, neither score nor verdict."""
    if submission.failure_reason:
        submission.failure_reason = CONTRIBUTOR_FAILURE_REASON
    if not settings.CONTRIBUTORS_SEE_SCORES:
        submission.ai_probability = None
        submission.verdict = ""
    return submission


def submission_as_seen_by(*, submission: Submission, user: AbstractBaseUser) -> Submission:
    if user.has_perm("moderation.review_submission"):
        return submission
    return submission_for_contributor(submission=submission)


def audit_trail_for_contributor(*, submission_id: int) -> list[AuditEvent]:
    """The submission's audit trail as its contributor may read it (in memory, never saved): failures with the
    generic reason and, unless CONTRIBUTORS_SEE_SCORES, analysis steps without theirs (they carry the scores)."""
    events = list(audit_trail(submission_id=submission_id))
    for event in events:
        if event.action == lifecycle.Action.FAIL:
            event.reason = CONTRIBUTOR_FAILURE_REASON
        elif event.action in SCORE_ACTIONS and not settings.CONTRIBUTORS_SEE_SCORES:
            event.reason = ""
    return events


def audit_trail_as_seen_by(*, submission_id: int, user: AbstractBaseUser) -> list[AuditEvent]:
    if user.has_perm("moderation.review_submission"):
        return list(audit_trail(submission_id=submission_id))
    return audit_trail_for_contributor(submission_id=submission_id)


def submission_appealable(*, submission: Submission, user: AbstractBaseUser) -> bool:
    """Rejected, never appealed, and the user uploaded it: what services.appeal_create will accept.

    Reads `submission.appeal`, which submissions_visible_to selects, so it costs no query per row.
    """
    return (
        lifecycle.can(lifecycle.Action.APPEAL, submission.state)
        and submission.contributor_id == user.pk
        and not hasattr(submission, "appeal")
    )


def submission_claimable(*, submission: Submission, moderator: AbstractBaseUser) -> bool:
    """Whether the moderator may hold the item now: a claimable state, and nobody else holds it."""
    return lifecycle.can(lifecycle.Action.CLAIM, submission.state) and (
        Submission.objects.filter(lifecycle.claim_free(moderator=moderator), pk=submission.pk).exists()
    )


def submission_statuses(*, user: AbstractBaseUser, ids: list[int]) -> list[Submission]:
    """The few visible rows a contributor's page polls for, with what the row shows."""
    return list(submissions_visible_to(user=user).filter(pk__in=ids[:200]))


@dataclass(frozen=True)
class QueueFilters:
    scenery: str = ""
    verdict: str = ""
    probability_min: float | None = None
    probability_max: float | None = None
    model_name: str = ""
    date_from: date | None = None
    date_to: date | None = None
    contributor: str = ""
    ordering: str = "likely-ai"


def submissions_filter(*, submissions: QuerySet[Submission], filters: QueueFilters) -> QuerySet[Submission]:
    """Narrow submissions by the queue's filters; the dashboard and the API share this one definition."""
    if filters.scenery:
        submissions = submissions.filter(scenery=filters.scenery)
    if filters.verdict:
        submissions = submissions.filter(verdict=filters.verdict)
    if filters.probability_min is not None:
        submissions = submissions.filter(ai_probability__gte=filters.probability_min)
    if filters.probability_max is not None:
        submissions = submissions.filter(ai_probability__lte=filters.probability_max)
    if filters.model_name:
        ran = Detection.objects.filter(submission=OuterRef("pk"), model_name=filters.model_name)
        submissions = submissions.filter(Exists(ran))
    if filters.date_from:
        submissions = submissions.filter(created_at__date__gte=filters.date_from)
    if filters.date_to:
        submissions = submissions.filter(created_at__date__lte=filters.date_to)
    if filters.contributor:
        submissions = submissions.filter(contributor__username=filters.contributor)
    return submissions


QUEUE_TABS = {
    # The review queue proper, and the random share of cleared uploads drawn for a spot check, so the live
    # error rates see genuine photos the detector let through too (moderation.reporting.live_statistics).
    "flagged": Q(state=State.FLAGGED),
    "spot_check": Q(state=State.CLEARED, spot_check_share__isnull=False),
}


def review_queue(
    *, moderator: AbstractBaseUser | None = None, filters: QueueFilters | None = None, tab: str = "flagged"
) -> QuerySet[Submission]:
    """Flagged submissions (or, with tab "spot_check", cleared ones drawn for a spot check), filtered; by
    default most likely AI first. Given a moderator, items another moderator has open are left out.

    Every filter narrows an index on (state, …) so a page of 100,000 pending items stays fast.
    """
    filters = filters or QueueFilters()
    queue = Submission.objects.filter(QUEUE_TABS[tab])
    if moderator is not None:
        queue = queue.filter(lifecycle.claim_free(moderator=moderator))
    queue = submissions_filter(submissions=queue, filters=filters)
    return queue.select_related("contributor").order_by(*_order_by(_queue_keys(filters.ordering)))


def _queue_keys(ordering: str) -> tuple[tuple[str, bool], ...]:
    return QUEUE_ORDERINGS.get(ordering, QUEUE_ORDERINGS["likely-ai"])


def _order_by(keys: tuple[tuple[str, bool], ...], *, reverse: bool = False) -> list:
    return [F(field).desc() if descending != reverse else F(field).asc() for field, descending in keys]


def _beyond(keys: tuple[tuple[str, bool], ...], position: tuple, *, reverse: bool = False) -> Q:
    """Rows after `position` in the order of `keys` (before it, with `reverse`): a seek on the queue index, so a
    deep page costs what the first one does, and rows inserted or decided elsewhere never shift a boundary."""
    terms, ties = [], {}
    for (field, descending), value in zip(keys, position, strict=True):
        terms.append(Q(**ties, **{f"{field}__{'lt' if descending != reverse else 'gt'}": value}))
        ties[field] = value
    # The plain range lets the planner walk the queue index; the OR then settles ties.
    (first, descending), *_ = keys
    return Q(**{f"{first}__{'lte' if descending != reverse else 'gte'}": position[0]}) & reduce(or_, terms)


def _cursor(keys: tuple[tuple[str, bool], ...], submission: Submission) -> str:
    """The submission's position in the queue, as an opaque token for a link; exact to the microsecond."""
    values = [getattr(submission, field) for field, _ in keys]
    text = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor_position(keys: tuple[tuple[str, bool], ...], cursor: str) -> tuple | None:
    """The position a cursor holds, or None for one that is not a position in this ordering."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys) or None in values:
            return None
        return tuple(Submission._meta.get_field(field).to_python(v) for (field, _), v in zip(keys, values, strict=True))
    except (ValueError, TypeError, binascii.Error, ValidationError):
        return None


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, the cursors to the pages around it (None where there is none) and how many items
    the queue holds with these filters."""

    object_list: list[Submission]
    next_cursor: str | None
    previous_cursor: str | None
    count: int

    def __iter__(self) -> Iterator[Submission]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def review_queue_page(
    *,
    moderator: AbstractBaseUser,
    filters: QueueFilters | None = None,
    tab: str = "flagged",
    after: str = "",
    before: str = "",
    size: int = 50,
) -> QueuePage:
    """The page of the queue after the position `after` (or before `before`; the first page without either),
    by keyset (seek) pagination instead of OFFSET: a page boundary is a position, not a row count, so items
    decided or arriving between page loads neither repeat an item nor skip one. A cursor that is not a position
    in this ordering gives the first page."""
    filters = filters or QueueFilters()
    keys = _queue_keys(filters.ordering)
    queue = review_queue(moderator=moderator, filters=filters, tab=tab)
    position = _cursor_position(keys, before) if before else None
    if position is not None:
        rows = list(
            queue.filter(_beyond(keys, position, reverse=True)).order_by(*_order_by(keys, reverse=True))[: size + 1]
        )
        if len(rows) > size:
            items = rows[:size][::-1]
            return QueuePage(
                items,
                next_cursor=_cursor(keys, items[-1]),
                previous_cursor=_cursor(keys, items[0]),
                count=queue.count(),
            )
        # Less than a page is left before it (items were decided meanwhile): the first page, full.
    position = _cursor_position(keys, after) if after and not before else None
    rows = list((queue if position is None else queue.filter(_beyond(keys, position)))[: size + 1])
    items = rows[:size]
    return QueuePage(
        items,
        next_cursor=_cursor(keys, items[-1]) if len(rows) > size else None,
        previous_cursor=_cursor(keys, items[0]) if position is not None and items else None,
        count=queue.count(),
    )


def queue_tab_counts(*, moderator: AbstractBaseUser) -> dict[str, int]:
    """Items waiting for this moderator in each tab of the queue."""
    return {tab: review_queue(moderator=moderator, tab=tab).count() for tab in QUEUE_TABS}


def queue_neighbours(*, moderator: AbstractBaseUser, submission: Submission) -> tuple[int | None, int | None]:
    """(previous, next) flagged item around this one in "most likely AI" order, skipping others' claims.

    Keyset comparisons on the queue index, so moving through a long queue never counts or offsets.
    """
    queue = review_queue(moderator=moderator)
    keys = QUEUE_ORDERINGS["likely-ai"]
    position = (submission.ai_probability or 0.0, submission.state_changed_at, submission.pk)
    following = queue.filter(_beyond(keys, position)).values_list("pk", flat=True).first()
    previous = (
        queue.filter(_beyond(keys, position, reverse=True))
        .order_by(*_order_by(keys, reverse=True))
        .values_list("pk", flat=True)
        .first()
    )
    return previous, following


def queue_first(*, moderator: AbstractBaseUser, exclude_id: int | None = None) -> int | None:
    return review_queue(moderator=moderator).exclude(pk=exclude_id).values_list("pk", flat=True).first()


def state_counts() -> dict[str, int]:
    """Submissions per state, every state present (zero when none); one grouped query on the state index."""
    counts = dict.fromkeys(State.values, 0)
    counts.update(Submission.objects.order_by().values_list("state").annotate(n=Count("id")))
    return counts


def appeal_queue(*, moderator: AbstractBaseUser) -> QuerySet[Appeal]:
    """Pending appeals, oldest first, each with the review decision it contests."""
    return (
        Appeal.objects.filter(submission__state=State.APPEALED)
        .filter(lifecycle.claim_free(moderator=moderator, prefix="submission__"))
        .select_related("submission", "contributor")
        .prefetch_related(
            Prefetch(
                "submission__decisions",
                queryset=Decision.objects.select_related("reason", "moderator"),
                to_attr="decisions_made",
            )
        )
        .order_by("created_at", "id")
    )


def reasons_for(*, outcome: str) -> QuerySet[DecisionReason]:
    return DecisionReason.objects.filter(applies_to=outcome, active=True)


def contributor_history(*, submission: Submission) -> dict[str, int]:
    """The contributor's other submissions: how many, and how many ended approved or rejected."""
    return (
        Submission.objects.filter(contributor_id=submission.contributor_id)
        .exclude(pk=submission.pk)
        .aggregate(
            total=Count("id"),
            approved=Count("id", filter=Q(state=State.APPROVED)),
            rejected=Count("id", filter=Q(state=State.REJECTED)),
        )
    )


EXIF_FIELDS = (
    "Make",
    "Model",
    "LensModel",
    "DateTimeOriginal",
    "Software",
    "ExposureTime",
    "FNumber",
    "ISOSpeedRatings",
)


def image_exif_get(*, evidence: list[Evidence]) -> dict[str, str]:
    """Camera fields of the original's EXIF, from the evidence analysis stored (the original is not read)."""
    return {e.key: e.value for e in evidence if e.kind == "exif" and e.key in EXIF_FIELDS}


def provenance_conflicts(
    *, submission: Submission, evidence: list[Evidence], detections: list[Detection], exif: dict[str, str]
) -> list[str]:
    """Plain-language contradictions between the declaration, the metadata and the detectors."""
    suggests = {e.suggests for e in evidence}
    says_ai = submission.verdict == Verdict.AI or any(d.verdict == Verdict.AI for d in detections)
    says_real = bool(detections) and all(d.verdict == Verdict.REAL for d in detections)
    camera = Evidence.Suggests.CAMERA in suggests or bool(exif.get("Make") or exif.get("Model"))
    conflicts = []
    if camera and says_ai:
        conflicts.append("Camera EXIF present, but the detector says AI-generated.")
    if not submission.declared_ai and Evidence.Suggests.AI in suggests:
        conflicts.append("Declared as not made with AI, but the metadata says generative AI.")
    if submission.declared_ai and says_real:
        conflicts.append("Declared as made with AI, but every detector says real photo.")
    if Evidence.Suggests.AI in suggests and Evidence.Suggests.CAMERA in suggests:
        conflicts.append("The metadata contradicts itself: both camera and generative-AI markers.")
    return conflicts
