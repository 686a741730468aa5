"""Billing against a fake Stripe on loopback (tests/fakes/stripe.py), with webhook events
signed as Stripe signs them and verified by stripe-python in the view."""

import hashlib
import hmac
import json
import time

import pytest

from billing.models import CreditPack, Plan

WEBHOOK_SECRET = "whsec_test_secret"
WEBHOOK_URL = "/api/v1/billing/stripe/webhook"


@pytest.fixture
def fake_stripe(settings):
    from tests.fakes.stripe import FakeStripe

    with FakeStripe() as server:
        server.use(settings)
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        yield server


@pytest.fixture
def pack(db):
    """The seeded Starter pack (500 credits, $5), with a Stripe price."""
    pack = CreditPack.objects.get(slug="starter")
    pack.stripe_price_id = "price_starter"
    pack.save(update_fields=["stripe_price_id"])
    return pack


@pytest.fixture
def pro(db):
    """The seeded Pro plan (4000 credits a month), with a Stripe price."""
    plan = Plan.objects.get(slug="pro")
    plan.stripe_price_id = "price_pro"
    plan.save(update_fields=["stripe_price_id"])
    return plan


def stripe_signature(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` as Stripe computes it: HMAC-SHA256 of ``"<t>.<payload>"``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


_ids = iter(range(1, 10**9))


def event(type: str, obj: dict, *, id: str | None = None) -> str:
    """A Stripe event's JSON (the shape stripe-python parses), a fresh id unless given."""
    return json.dumps(
        {
            "id": id or f"evt_test_{next(_ids)}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "type": type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }
    )


def deliver(client, payload: str, **signing):
    """POST ``payload`` to the webhook, signed (``signing``: secret, timestamp)."""
    return client.post(
        WEBHOOK_URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(payload, **signing),
    )


def completed_session(order, *, payment_status: str = "paid", payment_intent: str = "pi_test_1") -> dict:
    """The checkout.session object Stripe sends when ``order``'s checkout completes."""
    return {
        "id": order.checkout_session_id,
        "object": "checkout.session",
        "mode": "payment" if order.kind == "pack" else "subscription",
        "status": "complete",
        "payment_status": payment_status,
        "client_reference_id": str(order.user_id),
        "metadata": {"order_id": str(order.pk)},
        "amount_total": order.amount,
        "currency": order.currency,
        "customer": "cus_test_1",
        "payment_intent": payment_intent if order.kind == "pack" else None,
        "subscription": None if order.kind == "pack" else "sub_test_1",
    }
