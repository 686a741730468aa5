"""An index for a person's ledger filtered by type (``GET credits/transactions?type=``):
the owner (the RLS policy's user_id), the type, then the page's order, so a rare type
(a refund among 100k charges) reads only its own rows. Built concurrently: every charge
writes the ledger."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("credits", "0006_admin_order_and_description_words")]

    operations = [
        AddIndexConcurrently(
            model_name="credittransaction",
            index=models.Index(fields=["user", "type", "-created_at", "-id"], name="credit_tx_user_type_idx"),
        ),
    ]
