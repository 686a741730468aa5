"""A first catalog: three credit packs and the free, basic and pro plans. Stripe price
ids are left empty: staff fill them in the admin (test or live mode differ)."""

from django.db import migrations

PACKS = [
    # slug, name, credits, price (cents), sort order
    ("starter", "Starter", 500, 500, 10),
    ("creator", "Creator", 2_500, 2_000, 20),
    ("studio", "Studio", 10_000, 6_000, 30),
]
PLANS = [
    # slug, name, monthly price (cents), monthly credits, sort order
    ("free", "Free", 0, 0, 0),
    ("basic", "Basic", 900, 1_000, 10),
    ("pro", "Pro", 2_900, 4_000, 20),
]


def seed(apps, schema_editor):
    CreditPack = apps.get_model("billing", "CreditPack")
    Plan = apps.get_model("billing", "Plan")
    for slug, name, credits, price, order in PACKS:
        CreditPack.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "credits": credits, "price": price, "currency": "usd", "sort_order": order},
        )
    for slug, name, price, credits, order in PLANS:
        Plan.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "monthly_price": price,
                "monthly_credits": credits,
                "currency": "usd",
                "sort_order": order,
            },
        )


def unseed(apps, schema_editor):
    # Only rows nobody ordered (PROTECT keeps the rest, as it should).
    apps.get_model("billing", "CreditPack").objects.filter(slug__in=[p[0] for p in PACKS], orders__isnull=True).delete()
    apps.get_model("billing", "Plan").objects.filter(slug__in=[p[0] for p in PLANS], orders__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_billing_rls")]

    operations = [migrations.RunPython(seed, unseed)]
