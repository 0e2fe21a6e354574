"""Celery tasks of detection: thin interfaces over detection.services, taking ids and safe to run twice."""

from celery import Task, shared_task

from common.deferred import MODEL_TASK_OPTIONS, TRANSIENT_ERRORS, task_retry_later
from detection import services
from detection.runtime import ServedElsewhere


def job_forward(task: Task, exc: ServedElsewhere) -> bool:
    """The model changed framework since the job was sent (an admin switched the active model): the same
    job goes to the workers that run it. False when it came from that very queue (a worker set up for the
    wrong framework consumes it) or ran in-process: sending it again would loop."""
    arrived_on = (task.request.delivery_info or {}).get("routing_key")
    if task.request.is_eager or arrived_on == exc.queue:
        return False
    task.apply_async(args=task.request.args, kwargs=task.request.kwargs, queue=exc.queue)
    return True


@shared_task(bind=True, **MODEL_TASK_OPTIONS)
def heatmap_make(self, detection_id: int, layer: str) -> None:
    try:
        services.heatmap_render(detection_id=detection_id, layer=layer)
    except ServedElsewhere as exc:
        if not job_forward(self, exc):
            raise
    except TRANSIENT_ERRORS as exc:
        task_retry_later(self, exc)
