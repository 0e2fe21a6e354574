"""Reads for webhooks."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from webhooks.models import Webhook


def webhooks_of(*, owner: AbstractBaseUser) -> QuerySet[Webhook]:
    return Webhook.objects.filter(owner=owner)


def webhooks_subscribed(*, event: str) -> list[Webhook]:
    """Active webhooks of active accounts that listen to this event."""
    webhooks = Webhook.objects.filter(active=True, owner__is_active=True).select_related("owner")
    # Matched in Python: JSON containment lookups do not exist on SQLite, which embedded mode uses.
    return [webhook for webhook in webhooks if event in webhook.events]
