"""Reads of the audit log."""

from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_trail(*, submission_id: int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(submission_id=submission_id).select_related("actor").order_by("created_at", "id")


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None
    submission_id: int | None = None


def audit_log(*, filters: AuditFilters | None = None) -> QuerySet[AuditEvent]:
    filters = filters or AuditFilters()
    events = AuditEvent.objects.select_related("actor")
    if filters.actor == "system":
        events = events.filter(actor=None)
    elif filters.actor:
        events = events.filter(actor__username=filters.actor)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.date_from:
        events = events.filter(created_at__date__gte=filters.date_from)
    if filters.date_to:
        events = events.filter(created_at__date__lte=filters.date_to)
    if filters.submission_id:
        events = events.filter(submission_id=filters.submission_id)
    return events.order_by("-created_at", "-id")


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
