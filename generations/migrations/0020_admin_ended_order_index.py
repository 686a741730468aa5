"""An index for the admin's generations list filtered to failed or cancelled ones (the
rows staff look into), newest first. The list's own order index
(generations_admin_order_idx) serves it by skipping every row of another status: at a
million generations, where those are a few percent and seldom the newest, the
"failed" filter skipped ~160,000 index entries a page (make bench: 250–320 ms, 2.2–2.4×
the 10k page). Partial on those two statuses: a row enters it once, when its generation
ends that way, so the queue's inserts and status changes to processing or completed
never touch it; the API's pages have no such condition, so the planner can never take
it for them. Built concurrently: generations is the work queue."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import F

from velro.expressions import UTCTimestamp


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("generations", "0019_status_events")]

    operations = [
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(
                F("status"),
                UTCTimestamp("created_at").desc(),
                F("id").desc(),
                condition=models.Q(("status__in", ["failed", "cancelled"])),
                name="generations_admin_ended_idx",
            ),
        ),
    ]
