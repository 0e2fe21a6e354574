"""Celery tasks: thin interfaces over detection.services. They take ids and are safe to run twice."""

from celery import Task, shared_task
from django.conf import settings

from detection import services

MAX_RETRIES = 5
# The hard limit stays below the broker's visibility timeout (settings), so a running task is never redelivered.
ANALYSIS_LIMITS = {
    "acks_late": True,
    "soft_time_limit": settings.ANALYSIS_TIME_LIMIT_SECONDS * 2 // 3,
    "time_limit": settings.ANALYSIS_TIME_LIMIT_SECONDS,
    "max_retries": MAX_RETRIES,
}


def _retry(task: Task, exc: BaseException) -> None:
    raise task.retry(exc=exc, countdown=min(300, 5 * 2**task.request.retries)) from exc


@shared_task(bind=True, **ANALYSIS_LIMITS)
def submission_analyse(self, submission_id: int) -> None:
    try:
        services.analysis_run(submission_id=submission_id)
    except services.TRANSIENT_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            services.analysis_fail(
                submission_id=submission_id, reason=f"Gave up after {MAX_RETRIES} retries: {exc.__class__.__name__}"
            )
            return
        _retry(self, exc)


@shared_task(bind=True, **ANALYSIS_LIMITS)
def submission_reanalyse(self, submission_id: int, model_name: str) -> None:
    try:
        services.reanalysis_run(submission_id=submission_id, model_name=model_name)
    except services.TRANSIENT_ERRORS as exc:
        _retry(self, exc)


@shared_task(bind=True, **ANALYSIS_LIMITS)
def heatmap_make(self, detection_id: int, layer: str) -> None:
    try:
        services.heatmap_render(detection_id=detection_id, layer=layer)
    except services.TRANSIENT_ERRORS as exc:
        _retry(self, exc)


@shared_task(acks_late=True)
def submissions_requeue_stuck() -> int:
    return len(services.submissions_requeue_stuck(older_than=settings.ANALYSIS_STUCK_AFTER))
