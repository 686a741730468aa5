"""Background work of health, run by procrastinate's worker (velro/tasks.py): the daily
backup, pruned and verified (README, "Backups")."""

from __future__ import annotations

import logging

from django.conf import settings
from procrastinate.contrib.django import app

from health.backups import BackupBusy, backup_scheduled

logger = logging.getLogger(__name__)

# Minute 0 of BACKUP_HOUR (UTC), every day. procrastinate's worker defers it (its periodic
# deferrer runs in every `procrastinate worker`; procrastinate_periodic_defers lets one
# worker win each tick) if it is running within 10 minutes of that time.
BACKUP_CRON = f"0 {settings.BACKUP_HOUR} * * *"


# lock: two jobs never run at once; queueing_lock: at most one waits. The advisory lock
# inside backup_scheduled also keeps a `manage.py backup` started by hand out.
@app.task(lock="backup", queueing_lock="backup")
def backup_daily(timestamp: int) -> dict:
    """Take, prune and verify a backup. A failure fails the job (kept for the admin; the
    record says why, and dbhealth and the alert on the last verified backup's age tell
    on-call). Not retried: the next day's run is the retry."""
    try:
        run = backup_scheduled(progress=logger.info)
    except BackupBusy as exc:
        logger.warning("scheduled backup skipped: %s", exc)
        return {"skipped": str(exc)}
    return {"name": run.name, "size": run.size, "verified": run.verify_ok}


if settings.BACKUP_SCHEDULE == "daily":
    app.periodic(cron=BACKUP_CRON, periodic_id="backup")(backup_daily)
