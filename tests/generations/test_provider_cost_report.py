"""The admin page "Provider cost" (/admin/provider-cost/): per model, what fal reported
against the credits kept, for staff with the view permission only (issue 19)."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from generations import services
from generations.models import AIModel, Generation
from tests.factories import UserFactory

URL = "/admin/provider-cost/"


@pytest.fixture
def held(alice, bob):
    """Three generations fal held: one completed (inference 4.5 s, cost reported), one
    failed (refunded), one still in flight after a retried submit."""
    flux = AIModel.objects.get(pk="fal-ai/flux/dev")
    made = [services.generation_create(user=user, ai_model=flux, prompt="a fox") for user in (alice, bob, alice)]
    for generation, changes in zip(
        made,
        [
            {"status": "completed", "provider_inference_seconds": 4.5, "provider_cost": Decimal("0.025")},
            {"status": "failed", "provider_inference_seconds": 1.5},
            {"status": "processing", "attempts": 2},
        ],
        strict=True,
    ):
        Generation.objects.filter(pk=generation.pk).update(provider="fal", **changes)
    services.generation_create(user=bob, ai_model=flux, prompt="local")  # no provider: not counted
    return made


def test_staff_see_cost_against_credits_per_model(held, staff, client):
    client.force_login(staff)
    response = client.get(URL)
    assert response.status_code == 200
    (row,) = response.context["rows"]
    assert row["ai_model_id"] == "fal-ai/flux/dev" and row["provider"] == "fal"
    assert (row["total"], row["completed"], row["failed"], row["in_flight"]) == (3, 1, 1, 1)
    assert row["credits_kept"] == 25  # only the completed one keeps its credits
    assert row["inference_seconds"] == 6.0 and row["average_inference_seconds"] == 3.0
    assert row["provider_cost"] == Decimal("0.025") and row["retried"] == 1
    content = response.content.decode()
    assert 'id="provider-cost"' in content and 'data-model="fal-ai/flux/dev"' in content


def test_the_period_is_one_of_the_offered_ones(held, staff, client):
    client.force_login(staff)
    Generation.objects.filter(pk=held[0].pk).update(created_at="2000-01-01T00:00:00Z")
    assert client.get(URL, {"days": "7"}).context["rows"][0]["total"] == 2
    assert client.get(URL, {"days": "oops"}).context["days"] == 30


def test_not_staff_or_without_the_permission_cannot_see_it(held, client, alice):
    client.force_login(alice)
    assert client.get(URL).status_code == 302  # to the admin's login
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)
    assert client.get(URL).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_generation"))
    client.force_login(type(clerk).objects.get(pk=clerk.pk))
    assert client.get(URL).status_code == 200


def test_the_admin_index_links_to_it_for_those_who_may_see_it(db, client):
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)
    assert 'id="provider-cost-link"' not in client.get("/admin/").content.decode()
    clerk.user_permissions.add(Permission.objects.get(codename="view_generation"))
    client.force_login(type(clerk).objects.get(pk=clerk.pk))
    assert f'href="{URL}" id="provider-cost-link"' in client.get("/admin/").content.decode()
