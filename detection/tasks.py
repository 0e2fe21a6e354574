"""Celery tasks: thin interfaces over detection.services. They take ids and are safe to run twice."""

from celery import Task, shared_task
from django.conf import settings

from detection import services
from detection.runtime import ServedElsewhere

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


def _forward(task: Task, exc: ServedElsewhere) -> bool:
    """The model changed framework since the job was sent (an admin switched the active model): the same
    job goes to the workers that run it. False when it came from that very queue (a worker set up for the
    wrong framework consumes it) or ran in-process: sending it again would loop."""
    arrived_on = (task.request.delivery_info or {}).get("routing_key")
    if task.request.is_eager or arrived_on == exc.queue:
        return False
    task.apply_async(args=task.request.args, kwargs=task.request.kwargs, queue=exc.queue)
    return True


@shared_task(bind=True, **ANALYSIS_LIMITS)
def submission_analyse(self, submission_id: int) -> None:
    try:
        services.analysis_run(submission_id=submission_id)
    except ServedElsewhere as exc:
        if not _forward(self, exc):
            services.analysis_fail(submission_id=submission_id, reason=f"Analysis error: {exc}")
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
    except ServedElsewhere as exc:
        if not _forward(self, exc):
            raise
    except services.TRANSIENT_ERRORS as exc:
        _retry(self, exc)


@shared_task(bind=True, **ANALYSIS_LIMITS)
def heatmap_make(self, detection_id: int, layer: str) -> None:
    try:
        services.heatmap_render(detection_id=detection_id, layer=layer)
    except ServedElsewhere as exc:
        if not _forward(self, exc):
            raise
    except services.TRANSIENT_ERRORS as exc:
        _retry(self, exc)


@shared_task(acks_late=True)
def submissions_requeue_stuck() -> int:
    return len(services.submissions_requeue_stuck(older_than=settings.ANALYSIS_STUCK_AFTER))
