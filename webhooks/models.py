import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models


class Event(models.TextChoices):
    SUBMISSION_ANALYSED = "submission.analysed", "Submission analysed (cleared or flagged)"
    SUBMISSION_DECIDED = "submission.decided", "Submission decided by a moderator"


def webhook_secret_new() -> str:
    return secrets.token_hex(32)


def events_validate(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Subscribe to at least one event.")
    unknown = [event for event in value if event not in Event.values]
    if unknown:
        raise ValidationError(f"Unknown events: {', '.join(map(str, unknown))}. Choose from {', '.join(Event.values)}.")


class Webhook(models.Model):
    """An account's subscription: events are POSTed to url, signed with secret."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    # Only http(s): the delivery task must never be pointed at file:// or other urllib schemes.
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    secret = models.CharField(max_length=128, default=webhook_secret_new)
    events = models.JSONField(default=list, validators=[events_validate])
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one webhook; the attempt fields describe the latest attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=32, choices=Event.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the sweeper last sent the delivery again (never attempted, or a retry whose message was lost), so it
    # sends each at most once per interval, and each retry once per due time.
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.status})"
