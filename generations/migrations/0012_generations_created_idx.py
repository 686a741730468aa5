"""An index for the admin dashboard's generations per day by status and failures by
model (health/dashboard.py): a range scan on created_at that carries status and the
model, so the 30-day figures never read the table itself. Built concurrently: the
generations table is the work queue, and a plain CREATE INDEX would block its writes."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("generations", "0011_storage_bytes")]

    operations = [
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(fields=["created_at"], include=["status", "ai_model"], name="generations_created_idx"),
        ),
    ]
