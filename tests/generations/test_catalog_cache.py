"""POST generations reads its model through the process's copy of the catalog
(generations/catalog.py): kept for AI_MODEL_CACHE_SECONDS, emptied by a save through
Django, and never trusted for what the charge depends on."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Profile
from generations import catalog
from generations.models import AIModel, Generation
from tests.generations.conftest import FLUX


@pytest.fixture(autouse=True)
def _fresh_catalog():
    catalog.forget()
    yield
    catalog.forget()


def create(api, **body):
    body.setdefault("ai_model", FLUX)
    body.setdefault("prompt", "a red fox in the snow")
    return api.post("/api/v1/generations", body, format="json")


def catalog_reads(captured) -> int:
    return sum("public.ai_models" in q["sql"] and "generation_create" not in q["sql"] for q in captured)


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


def test_the_second_creation_does_not_read_the_model_again(alice, api_as):
    api = api_as(alice)
    with CaptureQueriesContext(connection) as first:
        assert create(api).status_code == 201
    with CaptureQueriesContext(connection) as second:
        assert create(api).status_code == 201
    assert catalog_reads(first.captured_queries) == 1
    assert catalog_reads(second.captured_queries) == 0


def test_zero_seconds_reads_the_model_every_time(alice, api_as, settings):
    settings.AI_MODEL_CACHE_SECONDS = 0
    api = api_as(alice)
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            assert create(api).status_code == 201
        assert catalog_reads(captured.captured_queries) == 1


def test_a_kept_model_is_read_again_after_the_seconds(alice, api_as, settings, monkeypatch):
    api = api_as(alice)
    assert create(api).status_code == 201
    later = catalog.time.monotonic() + settings.AI_MODEL_CACHE_SECONDS + 1
    monkeypatch.setattr(catalog.time, "monotonic", lambda: later)
    with CaptureQueriesContext(connection) as captured:
        assert create(api).status_code == 201
    assert catalog_reads(captured.captured_queries) == 1


def test_a_save_through_django_is_seen_at_once(alice, api_as, flux):
    api = api_as(alice)
    assert create(api, parameters={"seed": 1}).status_code == 201
    schema = flux.parameter_schema
    schema["properties"].pop("seed")
    flux.parameter_schema = schema
    flux.save()  # the admin's path
    response = create(api, parameters={"seed": 1})
    assert response.status_code == 400, response.content
    assert "parameters" in response.json()["errors"]


def test_a_model_retired_by_another_process_is_still_refused_with_nothing_charged(alice, api_as):
    api = api_as(alice)
    assert create(api).status_code == 201
    before, made = balance(alice), Generation.objects.filter(user=alice).count()
    # Another process (no signal here) retires it: this process still holds the row.
    AIModel.objects.filter(pk=FLUX).update(is_active=False)
    response = create(api)
    assert response.status_code == 400, response.content
    assert "ai_model" in response.json()["errors"]
    assert (balance(alice), Generation.objects.filter(user=alice).count()) == (before, made)


def test_the_stored_price_is_charged_whatever_the_process_holds(alice, api_as):
    api = api_as(alice)
    assert create(api).json()["credits_charged"] == 25
    AIModel.objects.filter(pk=FLUX).update(credits_cost=7)  # another process, no signal
    before = balance(alice)
    response = create(api)
    assert response.status_code == 201, response.content
    assert response.json()["credits_charged"] == 7
    assert balance(alice) == before - 7


def test_an_unknown_model_is_not_kept(alice, api_as):
    api = api_as(alice)
    assert "ai_model" in create(api, ai_model="acme/new-model").json()["errors"]
    AIModel.objects.create(
        id="acme/new-model", display_name="New", provider="local", kind="image", credits_cost=1, is_active=True
    )
    assert create(api, ai_model="acme/new-model").status_code == 201
