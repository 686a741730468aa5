"""Races between real connections: credits are never spent twice or refunded twice."""

import pytest

from accounts.models import Profile
from credits.models import CreditTransaction
from generations import services
from generations.models import AIModel, Generation
from tests.factories import UserFactory
from tests.helpers import run_together
from velro.exceptions import Conflict, InsufficientCredits

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model():
    # Own row: transactional tests flush the seeded catalog when they end.
    return AIModel.objects.update_or_create(
        pk="test/race-model",
        defaults={"display_name": "Race", "kind": "image", "credits_cost": 25, "provider": "local"},
    )[0]


def balance(user):
    return Profile.objects.get(pk=user.pk).credits_balance


def test_concurrent_creates_beyond_the_balance_never_overspend(model):
    user = UserFactory()
    results = run_together(*[lambda: services.generation_create(user=user, ai_model=model, prompt="go")] * 8)
    accepted = [r for r in results if isinstance(r, Generation)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(accepted), len(refused)) == (4, 4), results
    assert balance(user) == 0
    assert Generation.objects.filter(user=user).count() == 4
    assert CreditTransaction.objects.filter(user=user, type="usage").count() == 4


def test_concurrent_idempotent_creates_make_one_generation(model):
    user = UserFactory()
    create = lambda: services.generation_create(user=user, ai_model=model, prompt="go", idempotency_key="k")  # noqa: E731
    results = run_together(*[create] * 6)
    assert all(isinstance(r, Generation) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert balance(user) == 75


def test_two_failures_racing_refund_once(model):
    user = UserFactory()
    services.generation_create(user=user, ai_model=model, prompt="go")
    generation = services.generation_claim_next()
    results = run_together(
        lambda: services.generation_fail(generation=generation, error="worker"),
        lambda: services.generation_fail(generation=generation, error="webhook"),
        lambda: services.generation_fail(generation=generation, error="sweep"),
    )
    assert sorted(results) == [False, False, True]
    assert CreditTransaction.objects.filter(generation=generation, type="refund").count() == 1
    assert balance(user) == 100


def test_cancel_claim_and_fail_racing_end_in_one_state_refunded_at_most_once(model):
    for _ in range(5):
        user = UserFactory()
        generation = services.generation_create(user=user, ai_model=model, prompt="go")
        results = run_together(
            lambda: services.generation_cancel(user=user, generation_id=generation.pk),  # noqa: B023
            lambda: services.generation_claim_next(),
            lambda: services.generation_fail(generation=generation, error="provider"),  # noqa: B023
        )
        generation.refresh_from_db()
        refunds = CreditTransaction.objects.filter(generation=generation, type="refund").count()
        assert generation.status in ("cancelled", "failed", "processing"), results
        assert refunds == (1 if generation.status in ("cancelled", "failed") else 0)
        assert balance(user) == (100 if refunds else 75)
        assert not any(isinstance(r, Exception) and not isinstance(r, Conflict) for r in results), results
