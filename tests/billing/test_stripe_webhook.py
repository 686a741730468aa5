"""POST billing/stripe/webhook: signed by Stripe, verified by stripe-python, each event
applied once, each grant one ledger row whatever the deliveries."""

import time

import pytest
import stripe

from billing.models import Order, StripeEvent
from billing.services import checkout_create
from credits.models import CreditTransaction
from credits.services import credits_charge
from health.base import Level
from health.checks import check_credits
from tests.billing.conftest import WEBHOOK_URL, completed_session, deliver, event, stripe_signature

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(alice, pack, fake_stripe):
    order, _url = checkout_create(user=alice, pack=pack)
    return order


def purchases(user):
    return list(CreditTransaction.objects.filter(user=user, type="purchase").values_list("amount", "reference"))


def balance(user):
    user.profile.refresh_from_db()
    return user.profile.credits_balance


def test_our_signature_is_the_one_stripe_python_makes():
    payload = event("ping", {})
    expected = stripe.WebhookSignature.generate_signature_header(payload, "whsec_test_secret", timestamp=1700000000)
    assert stripe_signature(payload, timestamp=1700000000) == expected


def test_a_paid_checkout_grants_the_pack_once(client, alice, order):
    response = deliver(client, event("checkout.session.completed", completed_session(order)))

    assert response.status_code == 200, response.json()
    assert response.json()["outcome"] == "applied"
    assert purchases(alice) == [(500, f"order:{order.pk}")]
    assert balance(alice) == 600
    order.refresh_from_db()
    assert (order.state, order.payment_intent_id) == ("paid", "pi_test_1")
    assert order.paid_at is not None


def test_a_redelivered_event_grants_nothing(client, alice, order):
    payload = event("checkout.session.completed", completed_session(order))
    assert deliver(client, payload).json()["duplicate"] is False
    response = deliver(client, payload)
    assert response.status_code == 200
    assert response.json() == {"id": response.json()["id"], "outcome": "already_received", "duplicate": True}
    assert purchases(alice) == [(500, f"order:{order.pk}")]
    assert StripeEvent.objects.count() == 1


def test_a_new_event_for_a_granted_session_grants_nothing(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    response = deliver(client, event("checkout.session.completed", completed_session(order)))
    assert response.json()["outcome"] == "nothing_to_do"
    response = deliver(client, event("checkout.session.async_payment_succeeded", completed_session(order)))
    assert response.json()["outcome"] == "nothing_to_do"
    assert purchases(alice) == [(500, f"order:{order.pk}")]
    assert balance(alice) == 600


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": "whsec_someone_else"},
        {"timestamp": int(time.time()) - 301},  # older than the 300 s tolerance
    ],
    ids=["wrong-secret", "stale"],
)
def test_a_bad_or_stale_signature_is_a_400_and_applies_nothing(client, alice, order, signing):
    response = deliver(client, event("checkout.session.completed", completed_session(order)), **signing)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
    assert purchases(alice) == []
    order.refresh_from_db()
    assert order.state == "pending"


def test_a_changed_body_or_no_header_is_a_400(client, alice, order):
    payload = event("checkout.session.completed", completed_session(order))
    signature = stripe_signature(payload)
    forged = payload.replace('"paid"', '"paid" ')
    response = client.post(WEBHOOK_URL, data=forged, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
    assert response.status_code == 400
    assert client.post(WEBHOOK_URL, data=payload, content_type="application/json").status_code == 400
    assert not StripeEvent.objects.exists() and purchases(alice) == []


def test_an_unconfigured_webhook_secret_refuses_everything(client, alice, order, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert deliver(client, event("checkout.session.completed", completed_session(order))).status_code == 400
    assert purchases(alice) == []


def test_an_unpaid_session_waits_for_the_async_payment(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order, payment_status="unpaid")))
    assert purchases(alice) == []
    deliver(client, event("checkout.session.async_payment_succeeded", completed_session(order)))
    assert purchases(alice) == [(500, f"order:{order.pk}")]


def test_a_failed_async_payment_fails_the_order(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order, payment_status="unpaid")))
    deliver(client, event("checkout.session.async_payment_failed", completed_session(order, payment_status="unpaid")))
    order.refresh_from_db()
    assert order.state == "failed"
    assert purchases(alice) == []


def test_an_event_type_we_do_not_handle_is_recorded_and_ignored(client, fake_stripe):
    response = deliver(client, event("customer.created", {"id": "cus_x", "object": "customer"}))
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == "ignored"


def charge(order, *, refunded_amount: int, full: bool, id: str = "ch_test_1") -> dict:
    return {
        "id": id,
        "object": "charge",
        "amount": order.amount,
        "amount_refunded": refunded_amount,
        "refunded": full,
        "payment_intent": order.payment_intent_id or "pi_test_1",
        "metadata": {"order_id": str(order.pk)},
    }


def test_a_refund_after_spending_stops_at_zero_and_records_the_shortfall(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    credits_charge(user=alice, amount=450, description="spent on generations")  # 600 → 150
    order.refresh_from_db()

    response = deliver(client, event("charge.refunded", charge(order, refunded_amount=500, full=True)))

    assert response.json()["outcome"] == "applied"
    assert balance(alice) == 0
    order.refresh_from_db()
    assert (order.state, order.credits_taken_back, order.shortfall) == ("refunded", 150, 350)
    assert list(CreditTransaction.objects.filter(user=alice, type="refund").values_list("amount", flat=True)) == [-150]
    # The same refund reported again (a new event id) takes nothing more.
    deliver(client, event("charge.refunded", charge(order, refunded_amount=500, full=True)))
    order.refresh_from_db()
    assert (order.credits_taken_back, order.shortfall) == (150, 350)
    assert check_credits(None).level == Level.OK  # dbhealth's ledger invariant


def test_a_partial_refund_takes_back_its_share_then_the_rest(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    order.refresh_from_db()
    deliver(client, event("charge.refunded", charge(order, refunded_amount=200, full=False)))
    order.refresh_from_db()
    assert (order.state, order.credits_taken_back, balance(alice)) == ("partially_refunded", 200, 400)
    deliver(client, event("charge.refunded", charge(order, refunded_amount=500, full=True)))
    order.refresh_from_db()
    assert (order.state, order.credits_taken_back, order.shortfall, balance(alice)) == ("refunded", 500, 0, 100)


def test_a_dispute_takes_back_what_is_left(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    order.refresh_from_db()
    dispute = {"id": "dp_test_1", "object": "dispute", "charge": "ch_test_1", "payment_intent": "pi_test_1"}
    deliver(client, event("charge.dispute.created", dispute))
    order.refresh_from_db()
    assert (order.state, order.credits_taken_back, balance(alice)) == ("disputed", 500, 100)
    assert CreditTransaction.objects.get(user=alice, type="adjustment").reference == "dispute:dp_test_1"


def test_a_late_checkout_event_after_a_refund_grants_nothing(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order)))
    order.refresh_from_db()
    deliver(client, event("charge.refunded", charge(order, refunded_amount=500, full=True)))
    deliver(client, event("checkout.session.completed", completed_session(order)))
    assert balance(alice) == 100
    assert Order.objects.get().state == "refunded"


def test_a_refund_of_an_order_never_paid_takes_nothing(client, alice, order):
    deliver(client, event("checkout.session.completed", completed_session(order, payment_status="unpaid")))
    deliver(client, event("checkout.session.async_payment_failed", completed_session(order, payment_status="unpaid")))
    order.refresh_from_db()
    response = deliver(client, event("charge.refunded", charge(order, refunded_amount=500, full=True)))
    assert response.json()["outcome"] == "nothing_to_do"
    assert balance(alice) == 100
    assert Order.objects.get().state == "failed"
