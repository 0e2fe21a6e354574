"""Deferred work, sent by task name (Saleor's call_event shape), and what happens when the broker is away.

By name, so a services module never imports a tasks module (tasks import services, never the reverse).
The Celery app's registry finds the task in every mode: in the embedded mode and in tests (always eager)
it runs in-process, otherwise it goes to the broker.

Two ways to send:
- `task_publish` hands the message to the broker now and raises BrokerUnavailable when it cannot, so a caller
  that records "sent" in its transaction (a submission moving to queued) rolls that back and tells its user.
- `task_send` sends once the transaction commits and only logs a broker that is away: the committed rows say
  what is still owed (a submission still received, a delivery never attempted) and a sweeper sends it later.
  The request that committed them succeeds either way.
"""

import logging
from collections.abc import Callable
from functools import partial

from celery import Task, current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from common.errors import Unavailable

logger = logging.getLogger(__name__)


class BrokerUnavailable(Unavailable):
    """The broker did not take the message: nothing was sent."""


def task_publish(name: str, *args: object, queue: str | None = None, retries: int = 0) -> None:
    """Send task `name` with `args` now, to `queue` when given, else where the task routes say; raises
    BrokerUnavailable when the broker cannot take it. `retries` sends it as that retry of the task (its
    `request.retries`), for a sweeper re-sending a retry whose message was lost. In-process (eager) the task runs
    once the current transaction commits instead: there is no broker to be away, and the task must see the
    caller's rows."""
    options = _options(queue=queue, retries=retries)
    if current_app.conf.task_always_eager:
        transaction.on_commit(partial(_send, name, args, options))
        return
    _publish_now(name, args, options)


def _options(*, queue: str | None, retries: int = 0) -> dict[str, object]:
    return {**({"queue": queue} if queue else {}), **({"retries": retries} if retries else {})}


def _publish_now(name: str, args: tuple, options: dict[str, object]) -> None:
    try:
        _send(name, args, options)
    except (KombuOperationalError, ConnectionError, TimeoutError) as exc:
        raise BrokerUnavailable("The task queue is out of reach; try again in a minute.") from exc


def _send(name: str, args: tuple, options: dict[str, object]) -> None:
    current_app.tasks[name].apply_async(args, **options)


def after_commit(publish: Callable[[], object], *, owed: str) -> None:
    """Run `publish` once the current transaction commits (at once outside of one). A broker that is away is
    logged, never raised: the committed rows record what is owed (`owed` says what, for the log) and a sweeper
    sends it later. Any other error is logged too (robust): the caller's transaction has committed already."""
    transaction.on_commit(partial(_publish_logged, publish, owed), robust=True)


def _publish_logged(publish: Callable[[], object], owed: str) -> None:
    try:
        publish()
    except BrokerUnavailable as exc:
        logger.warning("%s not sent, left for the sweeper: %s", owed, exc.__cause__ or exc)


# Redis consumes a queue's messages by priority, 0 first (kombu's steps 0, 3, 6, 9); unset means 0.
BACKGROUND_PRIORITY = 9


def task_send(name: str, *args: object, queue: str | None = None, background: bool = False) -> None:
    """Send task `name` with `args` after the current transaction commits (see after_commit); in-process it runs
    right then. A `background` task waits behind every other message of its queue."""
    options = {**_options(queue=queue), **({"priority": BACKGROUND_PRIORITY} if background else {})}
    after_commit(partial(_publish_now, name, args, options), owed=f"{name}{args}")


def task_ask(name: str, *args: object, queue: str | None = None, timeout: float) -> object | None:
    """Send task `name` now and wait at most `timeout` seconds for what it returns (through the result backend,
    the broker's Redis; in-process it has run by then); None when no answer comes in time, the broker is away or
    the task failed. Only for a question a user waits on and may go without: the message expires unanswered, so
    a busy worker does not take it up after the asker has gone."""
    from celery.exceptions import TimeoutError as ResultTimeout

    try:
        result = current_app.tasks[name].apply_async(args, **_options(queue=queue), expires=timeout)
        answer = result.get(timeout=timeout, propagate=False)
    except (ResultTimeout, KombuOperationalError, ConnectionError, TimeoutError):
        return None
    return answer if result.successful() else None


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
