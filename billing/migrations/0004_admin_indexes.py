"""What the billing admin needs at any size.

Orders: newest first on timezone('UTC', created_at) DESC, id DESC, the expression the
changelist orders by (velro.expressions.UTCTimestamp; not the bare column, which the
planner could take for the API's per-person pages in place of
billing_order_user_created_idx); the search's exact charge and invoice ids (the other
Stripe ids are indexed for the webhook); and paid_at for the revenue of the last 30
days shown above the list (selectors.revenue_by_day).

Stripe events: newest first (received_at DESC, id DESC; no API lists them) and the
search by words of the detail, a GIN index on to_tsvector('simple', detail), the
expression the search emits (velro.expressions.words).

Built concurrently: the webhook writes both tables."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

from velro.expressions import UTCTimestamp


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("billing", "0003_seed_catalog")]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                models.OrderBy(UTCTimestamp("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="billing_order_admin_order_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["charge_id"], name="billing_order_charge_idx"),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["invoice_id"], name="billing_order_invoice_idx"),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["paid_at"], condition=models.Q(paid_at__isnull=False), name="billing_order_paid_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="stripeevent",
            index=models.Index(fields=["-received_at", "-id"], name="stripe_event_received_idx"),
        ),
        AddIndexConcurrently(
            model_name="stripeevent",
            index=GinIndex(SearchVector("detail", config="simple"), name="stripe_event_detail_words_idx"),
        ),
    ]
