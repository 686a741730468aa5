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
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template, render_to_string
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


# An SMTP server that is down or refusing for a while: tried again after 10, 100, 1000 s
# and so on (about 3 hours in all). Delivery is at least once: a worker that dies after
# the server accepted a message but before the job is marked done sends it again.
EMAIL_RETRY = RetryStrategy(max_attempts=5, exponential_wait=10)


@app.task(retry=EMAIL_RETRY)
def send_email(*, to: list[str], subject: str, text: str, html: str = "") -> None:
    """Send one message through Django's mail framework (EMAIL_URL): a plain-text body
    and, when given, an HTML alternative. An SMTP error fails the attempt: retried."""
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def email_on_commit(*, to: str | list[str], template: str, context: dict) -> None:
    """Render ``<template>_subject.txt``, ``<template>.txt`` and (if present)
    ``<template>.html`` with ``context`` now, and send them once the current transaction
    commits (a rolled-back one sends nothing), from the task queue: a request never
    waits on SMTP, and a failed delivery is retried."""
    subject = " ".join(_render_text(f"{template}_subject.txt", context).split())
    text = _render_text(f"{template}.txt", context)
    try:
        html = render_to_string(f"{template}.html", context)
    except TemplateDoesNotExist:
        html = ""
    recipients = [to] if isinstance(to, str) else list(to)
    transaction.on_commit(lambda: send_email.defer(to=recipients, subject=subject, text=text, html=html), robust=True)


def _render_text(name: str, context: dict) -> str:
    """A plain-text template rendered without HTML escaping (``<`` stays ``<``)."""
    return get_template(name).template.render(Context(context, autoescape=False))
