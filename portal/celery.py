import logging
import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_ready
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def tasks_import(sender: Celery, **kwargs) -> None:
    # Services send tasks by name (common.deferred), so every process's registry must know every app's tasks.
    sender.loader.import_default_modules()


@task_prerun.connect
@task_postrun.connect
def database_connections_tidy(task: Task | None = None, **kwargs) -> None:
    # Django's rule around a web request, around a task (CELERY_DB_REUSE_MAX keeps Celery from reconnecting
    # for each one): a connection that broke or outlived CONN_MAX_AGE is dropped, the next query opens a new
    # one. An eager task runs inside its caller's transaction, on a connection that is not its to close.
    if task is not None and not task.request.is_eager:
        close_old_connections()


@worker_ready.connect
def detector_selftest(sender, **kwargs) -> None:
    # A model worker proves at start that it computes each model its queues carry (the active one, second
    # opinions) as it was made; a refusal is recorded for the settings page and /health/, and analyses with
    # that model fail with the reason rather than give wrong verdicts.
    from detection.selectors import model_names_available, model_queue
    from detection.services import detector_selftest_run

    consumed = set(sender.app.amqp.queues.consume_from or ())
    try:
        detector_selftest_run(
            model_names=[name for name in model_names_available() if model_queue(name=name) in consumed]
        )
    except Exception:  # the check must never keep a worker from starting; analyses re-check on load
        logging.getLogger(__name__).exception("start-up self-test could not run")
