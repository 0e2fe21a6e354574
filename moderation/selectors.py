"""Reads for the moderation domain."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet

from moderation.models import AuditEvent, DecisionReason, State, Submission


def submissions_visible_to(*, user: AbstractBaseUser) -> QuerySet[Submission]:
    """Contributors see their own submissions; moderators and admins see everyone's."""
    submissions = Submission.objects.select_related("contributor", "decision__reason")
    if user.has_perm("moderation.view_all_submissions"):
        return submissions
    return submissions.filter(contributor=user)


def review_queue() -> QuerySet[Submission]:
    """Flagged submissions, most likely AI first."""
    return (
        Submission.objects.filter(state=State.FLAGGED)
        .select_related("contributor")
        .order_by(F("ai_probability").desc(nulls_last=True), "state_changed_at")
    )


def reasons_for(*, outcome: str) -> QuerySet[DecisionReason]:
    return DecisionReason.objects.filter(applies_to=outcome, active=True)


def audit_trail(*, submission: Submission) -> QuerySet[AuditEvent]:
    return submission.audit_events.select_related("actor").order_by("created_at", "id")
