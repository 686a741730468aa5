"""Background tasks of the ground floor, run by procrastinate's worker.

procrastinate is the project's one task queue for work that is not a generation (README,
"Background tasks"): jobs are rows of ``procrastinate_jobs`` in our own database,
deferred in the caller's transaction and run by ``manage.py procrastinate worker``
(``make run``, ``make worker``). Its Django app imports the ``tasks`` module of every
installed app, so an app's tasks live in its own ``tasks.py``.

A task runs in the worker as the database owner, outside any request: it must be safe
to run twice (a retry after a crash, a job deferred twice), which each one here is.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import transaction
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

# A storage that is down for a moment: tried again after 5, 25, 125, 625 and 3125 s
# (about an hour in all); then the job stays failed, visible in the admin.
MEDIA_RETRY = RetryStrategy(max_attempts=5, exponential_wait=5)


@app.task(retry=MEDIA_RETRY)
def delete_media(names: list[str]) -> None:
    """Delete each storage name from ``default_storage``.

    Idempotent: a name that is already gone is not an error (the storage's ``delete``
    ignores a missing file), so a retry after a partial run finishes the rest. Any other
    error fails the attempt and the job is retried (``MEDIA_RETRY``).
    """
    for name in names:
        default_storage.delete(name)


def delete_media_on_commit(names: Iterable[str]) -> None:
    """Delete these storage names in the background once the current transaction commits.

    Until the commit, the row that points at a file may still be rolled back into
    existence: a rolled-back transaction defers nothing, and outside a transaction the
    job is deferred at once. The job is written through Django's connection after the
    commit, as the owner (the request's role switch ended with its transaction). If
    deferring fails, the error is logged and the caller's committed work stands: a file
    left behind is the lesser harm.
    """
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: delete_media.defer(names=names), robust=True)
