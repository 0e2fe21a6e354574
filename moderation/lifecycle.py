"""The submission lifecycle in one table: which action may move a submission from which states to which.

Services move submissions only through `submission_transition`, which reads its rules from TRANSITIONS;
views, selectors, templates and the status JSON ask `can(action, state)` instead of repeating state sets.
README's diagram is `diagram()`'s output (a test compares them).
"""

from dataclasses import dataclass

from django.db import models
from django.db.models import Q
from django.utils import timezone


class State(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    ANALYSING = "analysing", "Analysing"
    CLEARED = "cleared", "Cleared"
    FLAGGED = "flagged", "Flagged for review"
    FAILED = "failed", "Analysis failed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    APPEALED = "appealed", "Appeal pending"


class Action(models.TextChoices):
    """Everything the audit log records; the value is what it shows."""

    UPLOAD = "uploaded", "Uploaded"
    QUEUE = "queued", "Queued for analysis"
    ANALYSIS_START = "analysis started", "Analysis started"
    ANALYSE = "analysed", "Analysed"
    FAIL = "failed", "Analysis failed"
    REQUEUE = "requeued", "Re-queued by a moderator"
    SWEEP = "swept", "Re-queued by the sweeper"
    CLAIM = "claimed", "Claimed for review"
    DECIDE = "decided", "Decided"
    APPEAL = "appealed", "Appealed"
    APPEAL_DECIDE = "appeal decided", "Appeal decided"
    REANALYSIS_REQUEST = "re-analysis requested", "Re-analysis requested"
    REANALYSE = "re-analysed", "Re-analysed"


@dataclass(frozen=True)
class Transition:
    """From which states an action is allowed, and where it may lead; no to-states: the state stays."""

    from_states: tuple[str, ...]
    to_states: tuple[str, ...]
    by: str


ANALYSIS_PENDING = (State.RECEIVED, State.QUEUED, State.ANALYSING)

TRANSITIONS: dict[str, Transition] = {
    Action.UPLOAD: Transition((), (State.RECEIVED,), "contributor"),
    Action.QUEUE: Transition((State.RECEIVED,), (State.QUEUED,), "system"),
    # A redelivered message may find the submission analysing already; it takes it over.
    Action.ANALYSIS_START: Transition((State.QUEUED, State.ANALYSING), (State.ANALYSING,), "worker"),
    Action.ANALYSE: Transition((State.ANALYSING,), (State.FLAGGED, State.CLEARED), "worker"),
    Action.FAIL: Transition((State.QUEUED, State.ANALYSING), (State.FAILED,), "worker"),
    Action.REQUEUE: Transition((State.FAILED,), (State.QUEUED,), "moderator"),
    Action.SWEEP: Transition((State.QUEUED, State.ANALYSING), (State.QUEUED,), "sweeper"),
    Action.CLAIM: Transition((State.FLAGGED, State.CLEARED, State.APPEALED), (), "moderator"),
    Action.DECIDE: Transition((State.FLAGGED, State.CLEARED), (State.APPROVED, State.REJECTED), "moderator"),
    Action.APPEAL: Transition((State.REJECTED,), (State.APPEALED,), "contributor"),
    Action.APPEAL_DECIDE: Transition((State.APPEALED,), (State.APPROVED, State.REJECTED), "another moderator"),
    Action.REANALYSIS_REQUEST: Transition(tuple(State.values), (), "moderator"),
    Action.REANALYSE: Transition(tuple(State.values), (), "worker"),
}


def can(action: str, state: str) -> bool:
    """Whether `action` is allowed on a submission in `state`."""
    rule = TRANSITIONS.get(action)
    return rule is not None and state in rule.from_states


def analysis_pending(state: str) -> bool:
    """Analysis has not finished yet: a contributor's page keeps polling."""
    return state in ANALYSIS_PENDING


def claim_free(*, moderator: object, prefix: str = "") -> Q:
    """Submissions nobody else holds: unclaimed, the hold lapsed, or held by this moderator.

    `prefix` reaches the submission through a relation ("submission__"), for appeals.
    """
    return (
        Q(**{f"{prefix}claimed_by": None})
        | Q(**{f"{prefix}claimed_until__lte": timezone.now()})
        | Q(**{f"{prefix}claimed_by": moderator})
    )


def diagram() -> str:
    """The table as text, one line per action; README's lifecycle section shows exactly this."""
    width = max(len(action) for action in TRANSITIONS)
    lines = []
    for action, rule in TRANSITIONS.items():
        start = "any" if set(rule.from_states) == set(State.values) else " | ".join(rule.from_states) or "(new)"
        end = " | ".join(rule.to_states) or "(state stays)"
        lines.append(f"{action:<{width}}  {start} → {end}  ({rule.by})".rstrip())
    return "\n".join(lines)
