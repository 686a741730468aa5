"""The style stacks' admin changelist, newest first at any size: a b-tree on
timezone('UTC', created_at) DESC, id DESC, the expression the changelist orders by
(velro.expressions.UTCTimestamp). Not on the bare column: the planner could then take it
for the API's per-person pages in place of style_stacks_user_idx, which an index on an
expression can never be.

(The search uses style_stacks_search_gin.) Built concurrently, so people keep saving
stacks while it runs."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

from velro.expressions import UTCTimestamp


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("stylestacks", "0008_preset_versions")]

    operations = [
        AddIndexConcurrently(
            model_name="stylestack",
            index=models.Index(
                models.OrderBy(UTCTimestamp("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="style_stacks_admin_order_idx",
            ),
        ),
    ]
