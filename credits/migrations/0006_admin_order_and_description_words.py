"""The ledger's admin changelist, newest first at any size: a b-tree on
timezone('UTC', created_at) DESC, id DESC, the expression the changelist orders by
(velro.expressions.UTCTimestamp). Not on the bare column: the planner could then take it
for the API's per-person pages in place of credit_tx_user_created_idx, which an index on an
expression can never be.

The search by words of the description: a GIN index on to_tsvector('simple',
description), the expression the admin's search emits (velro.expressions.words). Built
concurrently: every charge writes the ledger."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

from velro.expressions import UTCTimestamp


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("credits", "0005_credit_tx_created_brin")]

    operations = [
        AddIndexConcurrently(
            model_name="credittransaction",
            index=models.Index(
                models.OrderBy(UTCTimestamp("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="credit_tx_admin_order_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="credittransaction",
            index=GinIndex(SearchVector("description", config="simple"), name="credit_tx_desc_words_idx"),
        ),
    ]
