"""credits_purchase / credits_take_back: once per reference, never below zero."""

import pytest
from django.db import IntegrityError, transaction

from credits.models import CreditTransaction
from credits.services import credits_charge, credits_purchase, credits_take_back

pytestmark = pytest.mark.django_db


def balance(user):
    user.profile.refresh_from_db()
    return user.profile.credits_balance


def test_the_database_refuses_a_second_row_with_the_same_reference(alice, sql):
    sql("SELECT public.credits_apply(%s, 5, 'purchase', 'first', NULL, NULL, 'order:x')", [alice.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        sql("SELECT public.credits_apply(%s, 5, 'purchase', 'second', NULL, NULL, 'order:x')", [alice.pk])
    assert balance(alice) == 105  # the losing call's balance change went with it


def test_a_purchase_is_granted_once_per_reference(alice):
    first = credits_purchase(user_id=alice.pk, amount=500, reference="order:1", description="Starter")
    again = credits_purchase(user_id=alice.pk, amount=500, reference="order:1", description="Starter")
    assert (first.type, first.amount, first.balance_after, first.reference) == ("purchase", 500, 600, "order:1")
    assert again is None
    assert balance(alice) == 600


def test_taking_back_stops_at_zero_and_returns_the_shortfall(alice):
    credits_charge(user=alice, amount=70, description="spent")  # 100 → 30
    entry, shortfall = credits_take_back(user_id=alice.pk, amount=100, reference="refund:ch_1:500", description="r")
    assert (entry.amount, entry.balance_after, shortfall) == (-30, 0, 70)
    assert credits_take_back(user_id=alice.pk, amount=100, reference="refund:ch_1:500", description="r") == (None, 0)
    assert credits_take_back(user_id=alice.pk, amount=5, reference="refund:ch_2:500", description="r") == (None, 5)
    assert CreditTransaction.objects.filter(user=alice, type="refund").count() == 1
    assert balance(alice) == 0
