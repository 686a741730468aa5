"""The credits services and the ledger's database rules."""

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction

from accounts.models import Profile, User
from credits.models import CreditTransaction
from credits.selectors import credits_invariant_violations
from credits.services import credits_adjust, credits_charge, credits_grant
from velro.exceptions import InsufficientCredits


def balance(user):
    return Profile.objects.get(pk=user.pk).credits_balance


def test_grant_adds_credits_with_a_ledger_row(alice, staff):
    entry = credits_grant(user=alice, amount=50, reason="Welcome back", created_by=staff)
    assert (entry.type, entry.amount, entry.balance_after, entry.created_by_id) == ("grant", 50, 150, staff.pk)
    assert entry.description == "Welcome back"
    assert balance(alice) == 150


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [(0, "x", "amount"), (-5, "x", "amount"), (10**7, "x", "amount"), ("10", "x", "amount"), (5, "  ", "reason")],
)
def test_grant_refuses_bad_input_and_writes_nothing(alice, amount, reason, field):
    with pytest.raises(ValidationError) as info:
        credits_grant(user=alice, amount=amount, reason=reason)
    assert field in info.value.message_dict
    assert CreditTransaction.objects.filter(user=alice).count() == 1
    assert balance(alice) == 100


def test_adjust_goes_both_ways(alice):
    credits_adjust(user=alice, amount=-30, reason="Correction")
    credits_adjust(user=alice, amount=5, reason="Goodwill")
    assert balance(alice) == 75
    assert list(CreditTransaction.objects.filter(user=alice).values_list("amount", "balance_after")) == [
        (5, 75),
        (-30, 70),
        (100, 100),
    ]


def test_the_balance_never_goes_negative_and_nothing_is_written(alice):
    with pytest.raises(InsufficientCredits) as info:
        credits_charge(user=alice, amount=101, description="too much")
    assert info.value.extra == {"balance": 100, "required": 101}
    assert balance(alice) == 100
    assert CreditTransaction.objects.filter(user=alice).count() == 1


def test_charging_exactly_the_balance_reaches_zero(alice):
    credits_charge(user=alice, amount=100, description="all of it")
    assert balance(alice) == 0


def test_the_ledger_is_append_only_even_for_the_owner_connection(alice):
    entry = CreditTransaction.objects.get(user=alice)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CreditTransaction.objects.filter(pk=entry.pk).update(amount=1_000_000)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CreditTransaction.objects.filter(pk=entry.pk).delete()
    assert CreditTransaction.objects.get(pk=entry.pk).amount == 100


def test_deleting_a_person_removes_their_ledger_through_the_database(alice, staff):
    credits_grant(user=alice, amount=5, reason="x", created_by=staff)
    credits_grant(user=staff, amount=5, reason="y", created_by=alice)
    User.objects.filter(pk=alice.pk).delete()
    assert not CreditTransaction.objects.filter(user_id=alice.pk).exists()
    # alice had granted staff credits: that row stays, with created_by cleared.
    assert CreditTransaction.objects.get(user=staff, type="grant").created_by_id is None


@pytest.mark.breaks_ledger
def test_the_invariant_check_finds_a_corrupted_balance(alice, bob):
    Profile.objects.filter(pk=bob.pk).update(credits_balance=999)
    assert [row["user_id"] for row in credits_invariant_violations()] == [bob.pk]


def test_a_second_refund_for_one_generation_is_impossible(alice, sql):
    from generations.models import AIModel
    from generations.services import generation_create

    generation = generation_create(user=alice, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="fox")
    sql(
        "SELECT public.credits_apply(%s, 25, 'refund', 'first', %s)",
        [alice.pk, generation.pk],
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        sql("SELECT public.credits_apply(%s, 25, 'refund', 'second', %s)", [alice.pk, generation.pk])
    assert balance(alice) == 100
