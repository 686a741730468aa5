"""The same Stripe event delivered 32 times at once, each on its own connection: one
event row, one order paid, one grant."""

import threading

import pytest
from django.test import Client

from billing.models import CreditPack, Order, StripeEvent
from billing.services import checkout_create
from credits.models import CreditTransaction
from credits.selectors import credits_invariant_violations
from tests.billing.conftest import completed_session, deliver, event
from tests.factories import UserFactory
from tests.helpers import run_together

pytestmark = pytest.mark.django_db(transaction=True)

COPIES = 32


def test_one_event_delivered_32_times_at_once_grants_once(fake_stripe):
    # Own rows: a transactional test flushes the seeded catalog when it ends.
    pack = CreditPack.objects.create(slug="race", name="Race", credits=300, price=300, stripe_price_id="price_race")
    user = UserFactory()
    order, _url = checkout_create(user=user, pack=pack)
    payload = event("checkout.session.completed", completed_session(order))

    responses = run_together(*[lambda: deliver(Client(), payload)] * COPIES, timeout=120)

    statuses = [getattr(response, "status_code", response) for response in responses]
    assert statuses == [200] * COPIES
    assert sorted(response.json()["duplicate"] for response in responses) == [False] + [True] * (COPIES - 1)
    assert StripeEvent.objects.count() == 1
    grants = CreditTransaction.objects.filter(user=user, type="purchase")
    assert list(grants.values_list("amount", "reference")) == [(300, f"order:{order.pk}")]
    user.profile.refresh_from_db()
    assert user.profile.credits_balance == 400
    assert Order.objects.get().state == "paid"
    assert credits_invariant_violations() == []


def test_new_event_ids_for_one_session_at_once_grant_once(fake_stripe):
    """Stripe may also send distinct events about one payment (completed and
    async_payment_succeeded) at the same moment: the ledger's reference decides."""
    pack = CreditPack.objects.create(slug="race", name="Race", credits=300, price=300, stripe_price_id="price_race")
    user = UserFactory()
    order, _url = checkout_create(user=user, pack=pack)
    payloads = iter(
        [event("checkout.session.completed", completed_session(order)) for _ in range(COPIES // 2)]
        + [event("checkout.session.async_payment_succeeded", completed_session(order)) for _ in range(COPIES // 2)]
    )
    lock = threading.Lock()

    def deliver_next():
        with lock:
            payload = next(payloads)
        return deliver(Client(), payload)

    responses = run_together(*[deliver_next] * COPIES, timeout=120)

    assert [getattr(response, "status_code", response) for response in responses] == [200] * COPIES
    assert StripeEvent.objects.count() == COPIES
    assert CreditTransaction.objects.filter(user=user, type="purchase").count() == 1
    user.profile.refresh_from_db()
    assert user.profile.credits_balance == 400
