"""Celery tasks of detection: thin interfaces over detection.services, taking ids and safe to run twice."""

import base64

from celery import Task, shared_task

from common.deferred import MODEL_TASK_OPTIONS, TRANSIENT_ERRORS, task_retry_later
from detection import services
from detection.runtime import ServedElsewhere
from detection.selectors import heatmap_queue


def job_forward(task: Task, exc: ServedElsewhere) -> bool:
    """The model changed framework since the job was sent (an admin switched the active model): the same
    job goes to the workers that run it. False when it came from that very queue (a worker set up for the
    wrong framework consumes it) or ran in-process: sending it again would loop."""
    arrived_on = (task.request.delivery_info or {}).get("routing_key")
    if task.request.is_eager or arrived_on == exc.queue:
        return False
    # Under its own id: work it took under that id (an analysis batch) is resumed there.
    task.apply_async(args=task.request.args, kwargs=task.request.kwargs, queue=exc.queue, task_id=task.request.id)
    return True


@shared_task(bind=True, **MODEL_TASK_OPTIONS)
def heatmap_make(self, detection_id: int, layer: str) -> None:
    try:
        services.heatmap_render(detection_id=detection_id, layer=layer)
    except ServedElsewhere as exc:
        # To the queue the model's heatmaps are sent to, not the one its analyses go to.
        if not job_forward(self, ServedElsewhere(name=exc.name, queue=heatmap_queue(name=exc.name))):
            raise
    except TRANSIENT_ERRORS as exc:
        task_retry_later(self, exc)


@shared_task(ignore_result=False, soft_time_limit=20, time_limit=30)
def scenery_suggest(image: str) -> str:
    """The upload page's question, asked while the contributor waits: the canonical image travels base64 in the
    message (a few KB; nothing is stored for it), the answer through the result backend. Not acknowledged late and
    never retried: an answer that comes late is of no use (the message expires with the asker's wait)."""
    [scenery] = services.scenery_suggestions_compute(images=[services.image_decoded(data=base64.b64decode(image))])
    return scenery
