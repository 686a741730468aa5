"""Plans: each paid invoice grants the month's credits once, whatever order the events
arrive in; a subscription that ends returns the person to free."""

import pytest

from billing.models import Order, StripeEvent
from billing.services import checkout_create
from credits.models import CreditTransaction
from tests.billing.conftest import completed_session, deliver, event

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(alice, pro, fake_stripe):
    order, _url = checkout_create(user=alice, pack=None, plan=pro)
    return order


def invoice(id: str, *, subscription: str = "sub_test_1", metadata: dict | None = None, reason="subscription_cycle"):
    """An invoice as API 2026 sends it: the subscription under parent.subscription_details."""
    return {
        "id": id,
        "object": "invoice",
        "customer": "cus_test_1",
        "amount_paid": 2900,
        "currency": "usd",
        "billing_reason": reason,
        "status": "paid",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription, "metadata": metadata or {}},
        },
    }


def subscription(order, *, status="active", id="sub_test_1") -> dict:
    return {"id": id, "object": "subscription", "status": status, "customer": "cus_test_1",
            "metadata": {"order_id": str(order.pk)}}  # fmt: skip


def plan_of(user) -> str:
    user.profile.refresh_from_db()
    return user.profile.current_plan


def plan_grants(user):
    rows = CreditTransaction.objects.filter(user=user, type="purchase").order_by("created_at")
    return list(rows.values_list("amount", "reference"))


def test_checkout_then_invoices_grant_each_month_once(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    assert plan_of(alice) == "pro"
    assert plan_grants(alice) == []  # the credits come with the invoice
    first = invoice("in_1", metadata={"order_id": str(order.pk)}, reason="subscription_create")
    deliver(client, event("invoice.paid", first))
    deliver(client, event("invoice.paid", first))  # the same invoice again, a new event id
    deliver(client, event("invoice.paid", invoice("in_2", metadata={"order_id": str(order.pk)})))  # a renewal

    assert plan_grants(alice) == [(4000, "invoice:in_1"), (4000, "invoice:in_2")]
    alice.profile.refresh_from_db()
    assert alice.profile.credits_balance == 100 + 8000


def test_an_invoice_before_the_checkout_event_asks_stripe_for_its_subscription(client, alice, order, fake_stripe):
    fake_stripe.put(subscription(order))

    response = deliver(client, event("invoice.paid", invoice("in_1")))  # no metadata: who is it?

    assert response.json()["outcome"] == "applied"
    assert [call.path for call in fake_stripe.requests if call.method == "GET"] == ["/v1/subscriptions/sub_test_1"]
    assert plan_grants(alice) == [(4000, "invoice:in_1")]
    assert plan_of(alice) == "pro"
    order.refresh_from_db()
    assert (order.state, order.subscription_id) == ("paid", "sub_test_1")
    # The checkout event arriving late changes nothing more.
    deliver(client, event("checkout.session.completed", completed_session(order)))
    assert plan_grants(alice) == [(4000, "invoice:in_1")]


def test_an_invoice_stripe_cannot_explain_is_refused_for_a_retry(client, alice, order):
    response = deliver(client, event("invoice.paid", invoice("in_1", subscription="sub_unknown")))
    assert response.status_code == 502
    assert not StripeEvent.objects.exists()  # not recorded: Stripe's retry is handled afresh
    assert plan_grants(alice) == []


def test_a_subscription_that_stops_returns_the_person_to_free(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    deliver(client, event("customer.subscription.updated", subscription(order, status="past_due")))
    assert plan_of(alice) == "pro"  # Stripe is still retrying the payment
    deliver(client, event("customer.subscription.updated", subscription(order, status="unpaid")))
    assert plan_of(alice) == "free"
    deliver(client, event("customer.subscription.updated", subscription(order, status="active")))
    assert plan_of(alice) == "pro"
    deliver(client, event("customer.subscription.deleted", subscription(order, status="canceled")))
    assert plan_of(alice) == "free"
    assert Order.objects.get().state == "canceled"


def test_a_switch_in_the_portal_changes_the_plan_and_the_next_grant(client, alice, order, pro):
    basic = pro.__class__.objects.get(slug="basic")
    basic.stripe_price_id = "price_basic"
    basic.save(update_fields=["stripe_price_id"])
    deliver(client, event("checkout.session.completed", completed_session(order)))
    switched = {**subscription(order), "items": {"object": "list", "data": [{"price": {"id": "price_basic"}}]}}

    deliver(client, event("customer.subscription.updated", switched))
    assert plan_of(alice) == "basic"
    renewal = invoice("in_3", metadata={"order_id": str(order.pk)})
    renewal["lines"] = {"object": "list", "data": [{"pricing": {"price_details": {"price": "price_basic"}}}]}
    deliver(client, event("invoice.paid", renewal))

    assert plan_grants(alice) == [(1000, "invoice:in_3")]
    assert plan_of(alice) == "basic"
