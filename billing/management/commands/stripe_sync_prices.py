"""``manage.py stripe_sync_prices``: create the Stripe product and price of every active
pack and paid plan that has no Stripe price id yet, and store the id.

Idempotent: rows with a price id are left alone, and Stripe's idempotency keys (by slug
and amount) make a rerun after a crash reuse what the first run created instead of
creating it twice. Prices are immutable in Stripe: to change one, create a new price in
the dashboard (or clear the id here and rerun) and the old one stops being sold.
"""

import stripe
from django.core.management.base import BaseCommand, CommandError

from billing import stripe_api
from billing.models import CreditPack, Plan


class Command(BaseCommand):
    help = "Create Stripe products and prices for packs and plans without a Stripe price id."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be created; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        if not stripe_api.is_configured():
            raise CommandError("STRIPE_SECRET_KEY is not set.")
        client = stripe_api.client()
        todo = [
            *[("pack", pack, pack.price, None) for pack in CreditPack.objects.filter(active=True, stripe_price_id="")],
            *[
                ("plan", plan, plan.monthly_price, {"interval": "month"})
                for plan in Plan.objects.filter(active=True, stripe_price_id="", monthly_price__gt=0)
            ],
        ]
        if not todo:
            self.stdout.write("Every active pack and paid plan has a Stripe price.")
            return
        for kind, row, amount, recurring in todo:
            label = f"{kind} {row.slug} ({amount} {row.currency})"
            if dry_run:
                self.stdout.write(f"would create {label}")
                continue
            key = f"velro-{kind}-{row.slug}-{amount}-{row.currency}"
            try:
                product = client.v1.products.create(
                    params={"name": row.name, "metadata": {"velro_kind": kind, "velro_slug": row.slug}},
                    options={"idempotency_key": f"{key}-product"},
                )
                params = {"product": product.id, "unit_amount": amount, "currency": row.currency}
                if recurring:
                    params["recurring"] = recurring
                price = client.v1.prices.create(params=params, options={"idempotency_key": f"{key}-price"})
            except stripe.StripeError as exc:
                raise CommandError(f"Stripe refused {label}: {exc}") from exc
            # Only if still empty: staff may have pasted an id meanwhile.
            type(row).objects.filter(pk=row.pk, stripe_price_id="").update(stripe_price_id=price.id)
            self.stdout.write(f"created {label}: {price.id}")
