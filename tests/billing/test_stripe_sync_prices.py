"""manage.py stripe_sync_prices: a product and price for each pack and paid plan without
one, once."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import CreditPack, Plan

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("stripe_sync_prices", *args, stdout=out)
    return out.getvalue()


def test_it_creates_the_missing_prices_once(fake_stripe):
    CreditPack.objects.filter(slug="studio").update(stripe_price_id="price_existing")

    out = run()

    assert "created pack starter (500 usd)" in out and "studio" not in out
    packs = dict(CreditPack.objects.values_list("slug", "stripe_price_id"))
    plans = dict(Plan.objects.values_list("slug", "stripe_price_id"))
    assert packs["studio"] == "price_existing" and packs["starter"].startswith("price_test_")
    assert plans["free"] == "" and plans["pro"].startswith("price_test_")
    prices = {call.params["product"]: call.params for call in fake_stripe.calls("/v1/prices")}
    assert len(prices) == 4  # starter, creator, basic, pro
    assert sorted(p.get("recurring", {}).get("interval", "-") for p in prices.values()) == ["-", "-", "month", "month"]
    assert run() == "Every active pack and paid plan has a Stripe price.\n"
    assert len(fake_stripe.calls("/v1/prices")) == 4


def test_a_dry_run_changes_nothing(fake_stripe):
    assert "would create plan basic (900 usd)" in run("--dry-run")
    assert fake_stripe.requests == []
    assert not CreditPack.objects.exclude(stripe_price_id="").exists()


def test_it_needs_a_stripe_key(settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        run()
