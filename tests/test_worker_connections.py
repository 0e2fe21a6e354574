"""A worker keeps its database connection from task to task, as a web process does between requests, and
drops one that broke."""

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from moderation.models import Submission
from moderation.tasks import submission_analyse
from portal.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_a_worker():
    """The signal handlers Celery installs in a worker process, beside the portal's own."""
    fixup = DjangoWorkerFixup(app).install()
    yield
    signals.task_prerun.disconnect(fixup.on_task_prerun)
    signals.task_postrun.disconnect(fixup.on_task_postrun)
    signals.worker_process_init.disconnect(fixup.on_worker_process_init)
    signals.beat_embedded_init.disconnect(fixup.close_database)


def task_run():
    """One task's signals around a query, as a worker sends them; the database connection the query ran on."""
    signals.task_prerun.send(sender=submission_analyse, task_id="t", task=submission_analyse, args=(), kwargs={})
    Submission.objects.exists()
    used = connection.connection
    signals.task_postrun.send(
        sender=submission_analyse, task_id="t", task=submission_analyse, args=(), kwargs={}, retval=None, state="x"
    )
    return used


def test_a_worker_runs_task_after_task_on_the_database_connection_it_opened_first(in_a_worker):
    used = [task_run() for _ in range(4)]
    assert all(conn is used[0] for conn in used)


def test_a_worker_whose_database_connection_broke_between_tasks_runs_the_next_task_on_a_new_one(in_a_worker):
    broken = task_run()
    broken.close()  # as when the database server restarts while the worker waits for work
    used = task_run()
    assert used is not broken
    assert not used.closed
