"""GET billing/packs and plans, POST billing/checkout and portal against the fake Stripe."""

import pytest

from billing.models import CreditPack, Order, StripeCustomer

pytestmark = pytest.mark.django_db


def test_anyone_lists_the_active_packs_only(api):
    CreditPack.objects.filter(slug="studio").update(active=False)
    response = api.get("/api/v1/billing/packs")
    assert response.status_code == 200
    assert [row["slug"] for row in response.json()] == ["starter", "creator"]
    assert response.json()[0] == {"slug": "starter", "name": "Starter", "credits": 500, "price": 500, "currency": "usd"}


def test_anyone_lists_the_plans(api):
    response = api.get("/api/v1/billing/plans")
    assert response.status_code == 200
    assert [row["slug"] for row in response.json()] == ["free", "basic", "pro"]


def test_checkout_without_a_stripe_key_is_a_clear_503(api_as, alice, pack, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = api_as(alice).post("/api/v1/billing/checkout", {"pack": "starter"}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "billing_not_configured"
    assert not Order.objects.exists()


def test_checkout_needs_a_signed_in_person(api, pack, fake_stripe):
    assert api.post("/api/v1/billing/checkout", {"pack": "starter"}, format="json").status_code == 401
    assert fake_stripe.requests == []


def test_checkout_opens_a_stripe_session_and_a_pending_order(api_as, alice, pack, fake_stripe, settings):
    response = api_as(alice).post("/api/v1/billing/checkout", {"pack": "starter"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get()
    assert body["order"]["id"] == str(order.pk) and body["order"]["state"] == "pending"
    assert body["url"] == f"https://checkout.stripe.test/c/pay/{order.checkout_session_id}"
    assert (order.user, order.kind, order.pack, order.amount, order.credits) == (alice, "pack", pack, 500, 500)
    (call,) = fake_stripe.calls("/v1/checkout/sessions")
    assert call.params["mode"] == "payment"
    assert call.params["client_reference_id"] == str(alice.pk)
    assert call.params["metadata"]["order_id"] == str(order.pk)
    assert call.params["payment_intent_data"]["metadata"]["order_id"] == str(order.pk)
    assert call.params["line_items"] == [{"price": "price_starter", "quantity": "1"}]
    assert call.params["success_url"] == settings.BILLING_SUCCESS_URL
    assert call.params["cancel_url"] == settings.BILLING_CANCEL_URL
    assert call.params["customer"] == StripeCustomer.objects.get(user=alice).customer_id
    assert call.headers["Idempotency-Key"] == f"checkout-{order.pk}"
    # The success page grants nothing: only the webhook does.
    alice.profile.refresh_from_db()
    assert alice.profile.credits_balance == 100


def test_a_person_keeps_one_stripe_customer(api_as, alice, pack, pro, fake_stripe):
    client = api_as(alice)
    assert client.post("/api/v1/billing/checkout", {"pack": "starter"}, format="json").status_code == 201
    assert client.post("/api/v1/billing/checkout", {"plan": "pro"}, format="json").status_code == 201
    assert len(fake_stripe.calls("/v1/customers")) == 1
    sessions = fake_stripe.calls("/v1/checkout/sessions")
    assert sessions[0].params["customer"] == sessions[1].params["customer"]
    assert sessions[1].params["mode"] == "subscription"
    assert sessions[1].params["subscription_data"]["metadata"]["order_id"] == str(Order.objects.get(kind="plan").pk)


@pytest.mark.parametrize(
    "body",
    [{}, {"pack": "starter", "plan": "pro"}, {"pack": "nope"}, {"plan": "free"}, {"pack": "creator"}],
    ids=["nothing", "both", "unknown", "free-plan", "no-stripe-price"],
)
def test_checkout_refuses_what_is_not_for_sale(api_as, alice, pack, pro, fake_stripe, body):
    response = api_as(alice).post("/api/v1/billing/checkout", body, format="json")
    assert response.status_code == 400, response.json()
    assert not Order.objects.exists()
    assert fake_stripe.calls("/v1/checkout/sessions") == []


def test_portal_links_the_persons_customer(api_as, alice, pack, fake_stripe):
    client = api_as(alice)
    assert client.post("/api/v1/billing/portal").status_code == 400  # nothing bought yet
    client.post("/api/v1/billing/checkout", {"pack": "starter"}, format="json")
    response = client.post("/api/v1/billing/portal")
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.test/")
    (call,) = fake_stripe.calls("/v1/billing_portal/sessions")
    assert call.params["customer"] == StripeCustomer.objects.get(user=alice).customer_id
