"""The billing admin: orders searchable by email and Stripe ids, filterable by state;
events read-only; packs editable."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import CreditPack, Order, StripeEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def orders(alice, bob):
    starter = CreditPack.objects.get(slug="starter")
    common = {"kind": "pack", "pack": starter, "amount": 500, "currency": "usd", "credits": 500}
    return {
        "alice": Order.objects.create(
            user=alice, checkout_session_id="cs_alice", payment_intent_id="pi_alice", **common
        ),
        "bob": Order.objects.create(user=bob, checkout_session_id="cs_bob", state="refunded", shortfall=7, **common),
    }


def listed(response) -> set[str]:
    return {str(order.pk) for order in response.context["cl"].result_list}


def test_orders_are_searched_by_email_and_stripe_ids(admin, orders):
    url = reverse("admin:billing_order_changelist")
    assert listed(admin.get(url, {"q": "alice@example.com"})) == {str(orders["alice"].pk)}
    assert listed(admin.get(url, {"q": "pi_alice"})) == {str(orders["alice"].pk)}
    assert listed(admin.get(url, {"q": "cs_bob"})) == {str(orders["bob"].pk)}
    assert listed(admin.get(url, {"state__exact": "refunded"})) == {str(orders["bob"].pk)}


def test_an_order_page_shows_the_shortfall_and_changes_nothing(admin, orders):
    response = admin.get(reverse("admin:billing_order_change", args=[orders["bob"].pk]))
    assert response.status_code == 200
    ledger = reverse("admin:credits_credittransaction_changelist") + f"?user__id__exact={orders['bob'].user_id}"
    assert ledger in response.content.decode()
    assert admin.get(ledger).status_code == 200
    admin.post(reverse("admin:billing_order_change", args=[orders["bob"].pk]), {"state": "paid"})
    assert Order.objects.get(pk=orders["bob"].pk).state == "refunded"
    assert admin.get(reverse("admin:billing_order_add")).status_code == 403


def test_stripe_events_are_read_only(admin):
    StripeEvent.objects.create(id="evt_1", type="charge.refunded", outcome="applied")
    assert admin.get(reverse("admin:billing_stripeevent_changelist")).status_code == 200
    assert admin.post(reverse("admin:billing_stripeevent_delete", args=["evt_1"]), {"post": "yes"}).status_code == 403
    assert StripeEvent.objects.filter(pk="evt_1").exists()


def test_staff_edit_a_pack(admin):
    pack = CreditPack.objects.get(slug="starter")
    data = {"slug": "starter", "name": "Starter", "credits": 600, "price": 500, "currency": "usd",
            "stripe_price_id": "price_live_1", "active": "on", "sort_order": 10}  # fmt: skip
    response = admin.post(reverse("admin:billing_creditpack_change", args=[pack.pk]), data)
    assert response.status_code == 302
    pack.refresh_from_db()
    assert (pack.credits, pack.stripe_price_id) == (600, "price_live_1")


def test_the_refund_action_asks_stripe_and_leaves_the_credits_to_the_webhook(admin, alice, orders, fake_stripe):
    paid = orders["alice"]
    Order.objects.filter(pk=paid.pk).update(state="paid")
    url = reverse("admin:billing_order_changelist")
    pending_bob = orders["bob"]

    response = admin.post(
        url, {"action": "refund", "_selected_action": [str(paid.pk), str(pending_bob.pk)]}, follow=True
    )

    texts = [str(message) for message in response.context["messages"]]
    assert any("refund re_test_" in text for text in texts)
    assert any("Only a paid credit pack" in text for text in texts)
    (call,) = fake_stripe.calls("/v1/refunds")
    assert call.params["payment_intent"] == "pi_alice"
    assert call.headers["Idempotency-Key"] == f"refund-{paid.pk}"
    assert Order.objects.get(pk=paid.pk).state == "paid"  # until charge.refunded arrives
    alice.profile.refresh_from_db()
    assert alice.profile.credits_balance == 100


def test_the_orders_page_shows_revenue_per_day(admin, alice, orders):
    Order.objects.filter(pk=orders["alice"].pk).update(state="paid", paid_at=timezone.now())
    Order.objects.filter(pk=orders["bob"].pk).update(paid_at=timezone.now() - timedelta(days=31))

    response = admin.get(reverse("admin:billing_order_changelist"))

    assert response.context["revenue"] == [
        {"day": timezone.localdate(), "currency": "usd", "orders": 1, "amount": 500, "major": "5.00"}
    ]
    assert "<td>5.00</td>" in response.content.decode()
