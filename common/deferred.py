"""Deferred work, sent by task name once the caller's transaction commits (Saleor's call_event shape).

By name, so a services module never imports a tasks module (tasks import services, never the reverse).
The Celery app's registry finds the task in every mode: in the embedded mode and in tests (always eager)
it runs in-process, otherwise it goes to the broker.
"""

from functools import partial

from celery import Task, current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction


def task_send(name: str, *args: object, queue: str | None = None) -> None:
    """Send task `name` with `args` after the current transaction commits (at once outside of one), to
    `queue` when given, else where the task routes say."""
    transaction.on_commit(partial(_send, name, args, queue))


def _send(name: str, args: tuple, queue: str | None) -> None:
    current_app.tasks[name].apply_async(args, **({"queue": queue} if queue else {}))


# Worth a retry: the database or the storage backend was briefly out of reach.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 5
# Tasks that run a network: acknowledged after they finish, and stopped if they hang. The hard limit stays
# below the broker's visibility timeout (settings), so a running task is never redelivered.
MODEL_TASK_OPTIONS = {
    "acks_late": True,
    "soft_time_limit": settings.ANALYSIS_TIME_LIMIT_SECONDS * 2 // 3,
    "time_limit": settings.ANALYSIS_TIME_LIMIT_SECONDS,
    "max_retries": MAX_RETRIES,
}


def task_retry_later(task: Task, exc: BaseException) -> None:
    """Retry a transient failure with exponential backoff, at most five minutes apart."""
    raise task.retry(exc=exc, countdown=min(300, 5 * 2**task.request.retries)) from exc
