"""An index for the admin dashboard's credits spent and granted per day
(health/dashboard.py): a range scan on created_at that sums amounts by type from the
index alone. Built concurrently: every charge writes the ledger, and a plain CREATE
INDEX would block those writes while it runs."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("credits", "0004_ledger_reference")]

    operations = [
        AddIndexConcurrently(
            model_name="credittransaction",
            index=models.Index(fields=["created_at"], include=["type", "amount"], name="credit_tx_created_idx"),
        ),
    ]
