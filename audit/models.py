"""The append-only audit log. It imports none of our apps: each app registers the actions it records."""

from django.conf import settings
from django.db import models

from audit.actions import action_choices


class AuditEvent(models.Model):
    """Who moved which submission from what to what, when and why; or who changed a setting."""

    submission = models.ForeignKey(
        "moderation.Submission", on_delete=models.CASCADE, related_name="audit_events", null=True
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    action = models.CharField(max_length=32, choices=action_choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # The table moderation created: the model moved apps, the rows stayed where they were.
        db_table = "moderation_auditevent"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        who = self.actor or "system"
        return f"{who}: {self.action} {self.from_state}→{self.to_state}"
