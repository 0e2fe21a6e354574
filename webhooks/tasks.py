"""Celery tasks for webhooks: thin interfaces over webhooks.services, taking ids and safe to run twice."""

from celery import shared_task
from django.conf import settings

from webhooks import services


@shared_task(bind=True, acks_late=True, max_retries=services.DELIVERY_MAX_RETRIES)
def webhook_deliver(self, delivery_id: int) -> None:
    try:
        services.webhook_delivery_attempt(delivery_id=delivery_id, attempt=self.request.retries)
    except services.DeliveryRetryable as exc:
        if self.request.retries >= services.DELIVERY_MAX_RETRIES:
            services.webhook_delivery_give_up(delivery_id=delivery_id)
            return
        delay = services.delivery_retry_delay(retries=self.request.retries)
        raise self.retry(exc=exc, countdown=delay.total_seconds()) from exc


@shared_task(acks_late=True)
def webhook_deliveries_sweep() -> int:
    """The beat schedule's sweeper: send again deliveries, and retries, whose message never reached a worker, and
    end those whose last attempt failed but whose worker died before giving up."""
    resent = services.webhook_deliveries_resend(older_than=settings.WEBHOOK_RESEND_AFTER)
    return len(resent) + len(services.webhook_deliveries_give_up_exhausted(older_than=settings.WEBHOOK_RESEND_AFTER))
