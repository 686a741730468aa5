from django.contrib import admin
from django.utils import timezone

from health.models import BackupRun
from velro.admin import ReadOnlyAdminMixin
from velro.pg_client import human_size

# The admin index with an "Operations" module on top, linking to the "Database health"
# page (health/admin_urls.py). Set here rather than by the URL root so the link comes and
# goes with the app.
admin.site.index_template = "admin/health/index.html"


@admin.register(BackupRun)
class BackupRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every backup taken and whether a restore proved it (README, "Backups"). Read-only:
    `manage.py backup` and the scheduled task write it. Small (one row a day)."""

    list_display = ["started_at", "name", "outcome", "age", "size_display", "storage", "verified_at"]
    list_filter = ["status", "verify_ok", "storage"]
    search_fields = ["name"]
    fields = [
        "name",
        "storage",
        "location",
        "status",
        "size",
        "sha256",
        "started_at",
        "finished_at",
        "error",
        "verified_at",
        "verify_ok",
        "verify_detail",
        "pruned_at",
        "row_counts",
    ]

    @admin.display(description="status")
    def outcome(self, run: BackupRun) -> str:
        if run.status != BackupRun.Status.TAKEN:
            return run.get_status_display()
        label = {True: "verified", False: "verification failed", None: "not verified"}[run.verify_ok]
        return f"{label}, pruned" if run.pruned_at else label

    @admin.display(description="age", ordering="finished_at")
    def age(self, run: BackupRun) -> str:
        if run.finished_at is None:
            return "-"
        return f"{(timezone.now() - run.finished_at).total_seconds() / 3600:.1f} h"

    @admin.display(description="size", ordering="size")
    def size_display(self, run: BackupRun) -> str:
        return human_size(run.size) if run.size is not None else "-"
