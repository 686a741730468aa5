"""A BRIN index on credit_transactions (created_at) for the admin dashboard's credits
spent and granted per day (health/dashboard.py): a range scan over the last 30 days.
BRIN: the ledger is append-only in created_at order, so it stays tiny, and it cannot be
taken for a person's newest-first ledger page in place of credit_tx_user_created_idx.
Built concurrently: every charge writes the ledger, and a plain CREATE INDEX would block
those writes while it runs."""

from django.contrib.postgres.indexes import BrinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("credits", "0004_ledger_reference")]

    operations = [
        AddIndexConcurrently(
            model_name="credittransaction",
            index=BrinIndex(fields=["created_at"], name="credit_tx_created_brin"),
        ),
    ]
