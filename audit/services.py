"""Writes to the audit log."""

from django.contrib.auth.models import AbstractBaseUser

from audit.models import AuditEvent


def audit_record(
    *,
    submission_id: int | None,
    actor: AbstractBaseUser | None,
    action: str,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
) -> AuditEvent:
    return AuditEvent.objects.create(
        submission_id=submission_id,
        actor=actor,
        action=action,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
    )
