"""A person sees only their own orders: in SQL as the API role, and through the API."""

import pytest
from django.db import DatabaseError

from billing.models import CreditPack, Order
from tests.conftest import as_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(alice, bob):
    starter = CreditPack.objects.get(slug="starter")

    def make(user, session):
        return Order.objects.create(
            user=user, kind="pack", pack=starter, amount=500, currency="usd", credits=500, checkout_session_id=session
        )

    return {"alice": make(alice, "cs_alice"), "bob": make(bob, "cs_bob")}


def test_sql_as_authenticated_reads_only_ones_own_orders(alice, bob, orders):
    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT id FROM public.billing_orders")
        assert cursor.fetchall() == [(orders["alice"].pk,)]
    with as_role("authenticated", bob) as cursor:
        cursor.execute("SELECT checkout_session_id FROM public.billing_orders")
        assert cursor.fetchall() == [("cs_bob",)]
    with pytest.raises(DatabaseError, match="permission denied"), as_role("anon") as cursor:
        cursor.execute("SELECT id FROM public.billing_orders")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE public.billing_orders SET state = 'paid' WHERE user_id = %(me)s",
        "INSERT INTO public.billing_orders (user_id, kind, pack_id, amount, currency, credits) "
        "SELECT %(me)s, 'pack', id, 1, 'usd', 1000000 FROM public.billing_credit_packs LIMIT 1",
        "SELECT id FROM public.billing_stripe_events",
        "SELECT customer_id FROM public.billing_stripe_customers",
    ],
    ids=["update-own-order", "insert-order", "read-events", "read-customers"],
)
def test_a_person_writes_no_order_and_reads_no_stripe_records(alice, orders, statement):
    with pytest.raises(DatabaseError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(statement, {"me": alice.pk})
    assert Order.objects.get(pk=orders["alice"].pk).state == "pending"


def test_the_api_lists_only_ones_own_orders(api_as, alice, bob, orders):
    response = api_as(alice).get("/api/v1/billing/orders")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(orders["alice"].pk)]
    assert "cs_bob" not in response.content.decode() and str(orders["bob"].pk) not in response.content.decode()
    assert api_as(bob).get("/api/v1/billing/orders").json()["results"][0]["id"] == str(orders["bob"].pk)


def test_anyone_reads_active_packs_in_sql(alice):
    CreditPack.objects.filter(slug="studio").update(active=False)
    for role, user in (("anon", None), ("authenticated", alice)):
        with as_role(role, user) as cursor:
            cursor.execute("SELECT slug FROM public.billing_credit_packs ORDER BY sort_order")
            assert cursor.fetchall() == [("starter",), ("creator",)]
