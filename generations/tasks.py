"""Background work of generations, run by procrastinate's worker (velro/tasks.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from generations.models import GenerationEvent


@app.periodic(cron="*/10 * * * *")  # every ten minutes
@app.task(queueing_lock="prune_generation_events")
def prune_generation_events(timestamp: int) -> int:
    """Delete status events older than ``EVENTS_RETENTION_HOURS``: they only serve
    streams resuming with ``Last-Event-ID`` (a client away longer reads GET generations
    instead). Old rows first, by the BRIN index on created_at; safe to run twice."""
    cutoff = timezone.now() - timedelta(hours=settings.EVENTS_RETENTION_HOURS)
    deleted, _ = GenerationEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
