import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def tasks_import(sender: Celery, **kwargs) -> None:
    # Services send tasks by name (common.deferred), so every process's registry must know every app's tasks.
    sender.loader.import_default_modules()


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
