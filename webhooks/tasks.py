"""Celery tasks for webhooks: thin interfaces over webhooks.services, taking ids and safe to run twice."""

from celery import shared_task
from django.conf import settings

from webhooks import services

# Six attempts in all, backing off 30 s, 2 min, 8 min, 32 min, ~2 h.
MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def webhook_deliver(self, delivery_id: int) -> None:
    try:
        services.webhook_delivery_attempt(delivery_id=delivery_id, attempt=self.request.retries)
    except services.DeliveryRetryable as exc:
        if self.request.retries >= MAX_RETRIES:
            services.webhook_delivery_give_up(delivery_id=delivery_id)
            return
        raise self.retry(exc=exc, countdown=30 * 4**self.request.retries) from exc


@shared_task(acks_late=True)
def webhook_deliveries_sweep() -> int:
    """The beat schedule's sweeper: send again deliveries whose message never reached a worker."""
    return len(services.webhook_deliveries_resend(older_than=settings.WEBHOOK_RESEND_AFTER))
