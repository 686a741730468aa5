"""The generations' admin changelist, newest first at any size: a b-tree on
timezone('UTC', created_at) DESC, id DESC, the expression the changelist orders by
(velro.expressions.UTCTimestamp). Not on the bare column: the planner could then take it
for the API's per-person pages in place of generations_user_created_idx, which an index on an
expression can never be.

The search by words of the prompt: a GIN index on to_tsvector('simple', prompt), the
expression the admin's search emits (velro.expressions.words). Built concurrently: the
table is the work queue, and a plain CREATE INDEX would block its writes."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

from velro.expressions import UTCTimestamp


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("generations", "0013_submit_and_release")]

    operations = [
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(
                models.OrderBy(UTCTimestamp("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="generations_admin_order_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="generation",
            index=GinIndex(SearchVector("prompt", config="simple"), name="generations_prompt_words_idx"),
        ),
    ]
