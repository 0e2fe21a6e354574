import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def tasks_import(sender: Celery, **kwargs) -> None:
    # Services send tasks by name (common.deferred), so every process's registry must know every app's tasks.
    sender.loader.import_default_modules()
