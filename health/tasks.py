"""Background work of health, run by procrastinate's worker (velro/tasks.py): the daily
backup, pruned and verified (README, "Backups")."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from procrastinate.contrib.django import app

from health.backups import BackupBusy, backup_scheduled
from health.models import BackupRun

logger = logging.getLogger(__name__)

# Minute 0 of every hour: the task takes the day's backup at BACKUP_HOUR (UTC), and at any
# later hour if that day's is missing — a worker that was down at BACKUP_HOUR (procrastinate
# defers a tick only within 10 minutes of it, MAX_DELAY) catches up within the hour it is
# back, instead of skipping the day. Every `procrastinate worker` runs the periodic deferrer;
# procrastinate_periodic_defers lets one worker win each tick.
BACKUP_CRON = "0 * * * *"


def backup_due(now: datetime) -> datetime:
    """The day's scheduled moment at or before ``now``: BACKUP_HOUR:00 UTC today, or
    yesterday's before that hour."""
    now = now.astimezone(UTC)
    due = now.replace(hour=settings.BACKUP_HOUR, minute=0, second=0, microsecond=0)
    return due if due <= now else due - timedelta(days=1)


def backup_taken_since(due: datetime) -> BackupRun | None:
    """The run that stands for the day: any backup into the backup storage started at or
    after ``due`` (the scheduled one, or one taken by hand), failed ones included — a
    failure is retried by the next day's run, not every hour (dbhealth and the alert say
    so). A copy written elsewhere (``--output``) does not count."""
    return (
        BackupRun.objects.filter(started_at__gte=due)
        .exclude(storage=BackupRun.Storage.FILE)
        .order_by("-started_at")
        .first()
    )


# lock: two jobs never run at once; queueing_lock: at most one waits. The advisory lock
# inside backup_scheduled also keeps a `manage.py backup` started by hand out.
@app.task(lock="backup", queueing_lock="backup")
def backup_daily(timestamp: int) -> dict:
    """Take, prune and verify the day's backup, unless one was taken since it was due
    (``timestamp``: the tick, unix seconds). A failure fails the job (kept for the admin;
    the record says why, and dbhealth and the alert on the last verified backup's age tell
    on-call)."""
    due = backup_due(datetime.fromtimestamp(timestamp, UTC))
    if (taken := backup_taken_since(due)) is not None:
        return {"skipped": f"the backup due {due:%Y-%m-%d %H:%M} UTC was started at {taken.started_at:%H:%M} UTC"}
    try:
        run = backup_scheduled(progress=logger.info)
    except BackupBusy as exc:
        logger.warning("scheduled backup skipped: %s", exc)
        return {"skipped": str(exc)}
    return {"name": run.name, "size": run.size, "verified": run.verify_ok}


if settings.BACKUP_SCHEDULE == "daily":
    app.periodic(cron=BACKUP_CRON, periodic_id="backup")(backup_daily)
