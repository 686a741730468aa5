"""The record of backups: each one taken, where it went, and whether it was proven by a
restore (README, "Backups"). Written by ``manage.py backup`` and the scheduled task as the
owner; read by ``dbhealth``, the metrics and the admin. No API role may touch it."""

from django.db import models
from django.db.models import Q


class BackupRun(models.Model):
    """One ``pg_dump`` of the database: the copy's name and where it is stored, its size
    and SHA-256, the exact row count of every table as the dump holds them (counted in
    the dump's own snapshot), and the outcome of its verification (restored into a
    scratch database, checked, counted, dropped)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        TAKEN = "taken", "Taken"
        FAILED = "failed", "Failed"

    class Storage(models.TextChoices):
        LOCAL = "local", "Data folder"
        S3 = "s3", "S3 bucket"
        FILE = "file", "A file given by --output"

    name = models.CharField(max_length=200, blank=True, db_default="")
    storage = models.CharField(max_length=10, choices=Storage.choices)
    location = models.CharField(max_length=1000, blank=True, db_default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_default="")
    # {"<schema>.<table>": rows} as of the dump's snapshot.
    row_counts = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, db_default="")
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_ok = models.BooleanField(null=True, blank=True)
    verify_detail = models.TextField(blank=True, db_default="")
    # Set when retention deleted the copy (the record stays, as history).
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "backup_runs"
        ordering = ["-started_at", "-id"]
        indexes = [
            # health.backups.last_verified_at (dbhealth, the metrics): the newest proven
            # backup is the first entry of this small partial index.
            models.Index(fields=["-finished_at"], name="backup_runs_verified_idx", condition=Q(verify_ok=True)),
            # The admin's list and the newest copy of a storage (verify, retention).
            models.Index(fields=["-started_at", "-id"], name="backup_runs_started_idx"),
        ]

    def __str__(self) -> str:
        return self.name or f"backup started {self.started_at:%Y-%m-%d %H:%M:%S}"
