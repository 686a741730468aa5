"""A BRIN index on generations (created_at) for the admin dashboard's generations per
day by status and failures by model (health/dashboard.py): a range scan over the last
30 days. BRIN rather than a b-tree: rows arrive in created_at order, so it stays tiny,
and it cannot hand rows out in created_at order, so the planner never prefers it to
generations_user_created_idx for a person's newest-first page. Built concurrently: the
table is the work queue, and a plain CREATE INDEX would block its writes."""

from django.contrib.postgres.indexes import BrinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("generations", "0011_storage_bytes")]

    operations = [
        AddIndexConcurrently(
            model_name="generation",
            index=BrinIndex(fields=["created_at"], name="generations_created_brin"),
        ),
    ]
