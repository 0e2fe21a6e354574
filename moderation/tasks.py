"""Celery tasks of the lifecycle: thin interfaces over moderation.analysis. They take ids, run twice safely."""

from celery import shared_task
from django.conf import settings

from common.deferred import MAX_RETRIES, MODEL_TASK_OPTIONS, TRANSIENT_ERRORS, task_retry_later
from detection.runtime import ServedElsewhere
from detection.tasks import job_forward
from moderation import analysis


@shared_task(bind=True, **MODEL_TASK_OPTIONS)
def submission_analyse(self, submission_id: int) -> None:
    """Analyse the submission, with the others waiting in the queue as one batch (analysis.analyses_take); a
    redelivery or retry of this task resumes the same batch."""
    try:
        analysis.analyses_run(task_id=self.request.id, submission_id=submission_id)
    except ServedElsewhere as exc:
        if not job_forward(self, exc):
            analysis.analyses_fail(
                task_id=self.request.id, submission_id=submission_id, reason=f"Analysis error: {exc}"
            )
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            analysis.analyses_fail(
                task_id=self.request.id,
                submission_id=submission_id,
                reason=f"Gave up after {MAX_RETRIES} retries: {exc.__class__.__name__}",
            )
            return
        task_retry_later(self, exc)


@shared_task(bind=True, **MODEL_TASK_OPTIONS)
def submission_reanalyse(self, submission_id: int, model_name: str) -> None:
    try:
        analysis.reanalysis_run(submission_id=submission_id, model_name=model_name)
    except ServedElsewhere as exc:
        if not job_forward(self, exc):
            raise
    except TRANSIENT_ERRORS as exc:
        task_retry_later(self, exc)


@shared_task(acks_late=True)
def submissions_sweep() -> int:
    """The beat schedule's sweeper: queue uploads whose message never reached the broker, ask again for lost
    heatmaps of flagged items, and re-queue submissions stuck in analysis."""
    resent = analysis.submissions_resend_received(older_than=settings.ANALYSIS_RESEND_AFTER)
    heatmaps = analysis.heatmaps_resend_missing(older_than=settings.HEATMAP_RESEND_AFTER)
    return (
        len(resent) + len(heatmaps) + len(analysis.submissions_requeue_stuck(older_than=settings.ANALYSIS_STUCK_AFTER))
    )
