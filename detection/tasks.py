"""Celery tasks: thin interfaces over detection.services. They take ids and are safe to run twice."""

from celery import shared_task
from django.conf import settings

from detection import services

MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, soft_time_limit=120, time_limit=180, max_retries=MAX_RETRIES)
def submission_analyse(self, submission_id: int) -> None:
    try:
        services.analysis_run(submission_id=submission_id)
    except services.TRANSIENT_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            services.analysis_fail(
                submission_id=submission_id, reason=f"Gave up after {MAX_RETRIES} retries: {exc.__class__.__name__}"
            )
            return
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def submissions_requeue_stuck() -> int:
    return len(services.submissions_requeue_stuck(older_than=settings.ANALYSIS_STUCK_AFTER))
