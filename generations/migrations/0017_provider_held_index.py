"""An index for the admin's Provider cost report (generations/admin_reports.py): the
generations a provider held in the last N days, read by created_at among those rows
alone. Without it the report read every generation of the period, including the ones
that ran in the worker (provider ''), and its time grew with the table. Partial on
``provider <> ''``: no query of a person's pages has that condition, so the planner can
never take it for them. Built concurrently: generations is the work queue."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("generations", "0016_owner_filter_indexes")]

    operations = [
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(
                condition=models.Q(("provider", ""), _negated=True),
                fields=["created_at"],
                name="generations_provider_held_idx",
            ),
        ),
    ]
