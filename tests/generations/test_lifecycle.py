"""The whole lifecycle through the worker with the local provider, and the service-side
transitions: cancel, fail, sweep, retry — refunds exactly once."""

import io
import re
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from accounts.models import Profile
from credits.models import CreditTransaction
from generations import services
from generations.models import AIModel, Generation
from generations.providers import ProviderError
from tests.generations.conftest import FLUX, VEO, make


def balance(user):
    return Profile.objects.get(pk=user.pk).credits_balance


def refunds(generation):
    return CreditTransaction.objects.filter(generation=generation, type="refund").count()


def test_register_to_output_file_through_the_worker(alice, api_as, client):
    """What a new user does: create, let the worker run, open the output, read the ledger."""
    api = api_as(alice)
    created = api.post(
        "/api/v1/generations",
        {"ai_model": FLUX, "prompt": "a lighthouse at dusk", "parameters": {"width": 512, "height": 384, "seed": 1}},
        format="json",
    ).json()
    call_command("run_worker", "--once", stdout=io.StringIO())

    body = api.get(f"/api/v1/generations/{created['id']}").json()
    assert body["status"] == "completed"
    assert body["started_at"] and body["completed_at"] and body["attempts"] == 1
    (output,) = body["outputs"]
    assert (output["mime_type"], output["width"], output["height"]) == ("image/png", 512, 384)
    assert re.match(
        rf"http://testserver/media/generations/[0-9a-f-]{{36}}/{created['id']}/0.png\?expires=", output["url"]
    )
    response = client.get(output["url"])  # a signed link (tests/media has the rules)
    assert response.status_code == 200
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert image.size == (512, 384)

    ledger = api.get("/api/v1/credits/transactions").json()["results"]
    assert [(row["type"], row["amount"], row["balance_after"]) for row in ledger] == [
        ("usage", -25, 75),
        ("signup_bonus", 100, 100),
    ]
    assert api.get("/api/v1/credits/balance").json()["credits_balance"] == 75


def test_the_local_provider_renders_per_prompt_and_seed(alice):
    from generations.providers.local import LocalProvider

    a = make(alice, parameters={"width": 256, "height": 256, "seed": 1})
    b = make(alice, parameters={"width": 256, "height": 256, "seed": 2})
    files = [LocalProvider().run(g).outputs[0] for g in (a, b)]
    contents = [f["content"] for f in files]
    assert contents[0] != contents[1]


def test_a_video_model_renders_an_animation(alice):
    from credits.services import credits_grant

    credits_grant(user=alice, amount=500, reason="video test")
    generation = make(alice, VEO, parameters={"duration": 5, "aspect_ratio": "9:16"})
    call_command("run_worker", "--once", stdout=io.StringIO())
    generation.refresh_from_db()
    (output,) = generation.outputs
    assert (output["mime_type"], output["width"], output["height"], output["duration"]) == ("image/gif", 180, 320, 5)
    with default_storage.open(output["path"]) as handle:
        assert Image.open(handle).n_frames > 1


def test_a_provider_error_fails_and_refunds_once(alice, monkeypatch):
    generation = make(alice)

    def broken(self, generation):
        raise ProviderError("upstream said no", provider_request_id="req-9")

    monkeypatch.setattr("generations.providers.local.LocalProvider.run", broken)
    call_command("run_worker", "--once", stdout=io.StringIO())
    generation.refresh_from_db()
    assert (generation.status, generation.error_message, generation.provider_request_id) == (
        "failed",
        "upstream said no",
        "req-9",
    )
    assert balance(alice) == 100
    assert refunds(generation) == 1


def test_a_crashing_provider_does_not_kill_the_worker(alice, monkeypatch):
    first, second = make(alice), make(alice)
    calls = []

    def flaky(self, generation):
        calls.append(generation.pk)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return type("R", (), {"outputs": [], "provider_request_id": ""})()

    monkeypatch.setattr("generations.providers.local.LocalProvider.run", flaky)
    call_command("run_worker", "--once", stdout=io.StringIO(), stderr=io.StringIO())
    statuses = dict(Generation.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "failed", second.pk: "completed"}
    assert refunds(first) == 1


def test_cancel_a_pending_generation_refunds_it(alice, api_as):
    generation = make(alice)
    response = api_as(alice).post(f"/api/v1/generations/{generation.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert balance(alice) == 100
    assert refunds(generation) == 1


def test_cancel_after_the_worker_claimed_it_is_a_409(alice, api_as):
    generation = make(alice)
    services.generation_claim_next()
    response = api_as(alice).post(f"/api/v1/generations/{generation.pk}/cancel")
    assert response.status_code == 409
    generation.refresh_from_db()
    assert generation.status == "processing"
    assert balance(alice) == 75


def test_cancel_twice_refunds_once(alice, api_as):
    generation = make(alice)
    api = api_as(alice)
    assert api.post(f"/api/v1/generations/{generation.pk}/cancel").status_code == 200
    assert api.post(f"/api/v1/generations/{generation.pk}/cancel").status_code == 409
    assert refunds(generation) == 1


def test_fail_after_cancel_changes_nothing(alice):
    generation = make(alice)
    services.generation_cancel(user=alice, generation_id=generation.pk)
    assert services.generation_fail(generation=generation, error="late") is False
    generation.refresh_from_db()
    assert generation.status == "cancelled"
    assert refunds(generation) == 1


def test_complete_after_the_sweep_failed_it_is_dropped(alice):
    generation = make(alice)
    claimed = services.generation_claim_next()
    Generation.objects.filter(pk=claimed.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert services.generation_sweep(timeout_seconds=60) == 1
    assert services.generation_complete(generation=claimed, outputs=[{"url": "x"}]) is False
    generation.refresh_from_db()
    assert (generation.status, generation.outputs) == ("failed", [])
    assert "Timed out" in generation.error_message
    assert balance(alice) == 100


def test_the_sweep_leaves_recent_work_alone(alice):
    make(alice)
    services.generation_claim_next()
    assert services.generation_sweep(timeout_seconds=600) == 0
    assert Generation.objects.get().status == "processing"


def test_claims_take_the_oldest_first_and_never_the_same_row(alice):
    first, second = make(alice), make(alice)
    assert services.generation_claim_next().pk == first.pk
    assert services.generation_claim_next().pk == second.pk
    assert services.generation_claim_next() is None


def test_retry_makes_a_new_charged_child(alice):
    generation = make(alice)
    services.generation_fail(generation=generation, error="x")
    child = services.generation_retry(generation=generation)
    assert (child.parent_id, child.status, child.prompt) == (generation.pk, "pending", generation.prompt)
    assert balance(alice) == 75


def test_favorites_and_their_filter(alice, api_as):
    liked, other = make(alice), make(alice)
    api = api_as(alice)
    assert api.post(f"/api/v1/generations/{liked.pk}/favorite").json()["is_favorite"] is True
    assert [row["id"] for row in api.get("/api/v1/generations?is_favorite=true").json()["results"]] == [str(liked.pk)]
    assert api.delete(f"/api/v1/generations/{liked.pk}/favorite").json()["is_favorite"] is False
    assert other.pk  # untouched
    assert not Generation.objects.filter(is_favorite=True).exists()


def test_the_list_is_newest_first_with_cursor_pages_and_filters(alice, api_as):
    from credits.services import credits_grant

    credits_grant(user=alice, amount=500, reason="list test")
    made = [make(alice, prompt=f"p{i}") for i in range(5)]
    services.generation_cancel(user=alice, generation_id=made[0].pk)
    api = api_as(alice)
    page = api.get("/api/v1/generations?page_size=2").json()
    assert [row["prompt"] for row in page["results"]] == ["p4", "p3"]
    assert page["next"] and "cursor=" in page["next"]
    second = api.get(page["next"]).json()
    assert [row["prompt"] for row in second["results"]] == ["p2", "p1"]
    cancelled = api.get("/api/v1/generations?status=cancelled").json()["results"]
    assert [row["prompt"] for row in cancelled] == ["p0"]
    by_model = api.get(f"/api/v1/generations?ai_model={FLUX}").json()["results"]
    assert len(by_model) == 5
    assert api.get("/api/v1/generations?status=bogus").status_code == 400


def test_list_queries_do_not_grow_with_the_page(alice, api_as, django_assert_max_num_queries):
    from credits.services import credits_grant

    credits_grant(user=alice, amount=1000, reason="n+1 test")
    for i in range(20):
        make(alice, prompt=f"p{i}")
    api = api_as(alice)
    # The auth user, savepoint, role switch, the page, reset, release: the same number
    # whatever the page size.
    with django_assert_max_num_queries(6) as small:
        assert len(api.get("/api/v1/generations?page_size=2").json()["results"]) == 2
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(api.get("/api/v1/generations?page_size=20").json()["results"]) == 20


def test_stats_count_and_sum_by_status_and_model(alice, api_as):
    a, b = make(alice), make(alice)
    services.generation_cancel(user=alice, generation_id=a.pk)
    assert b.pk
    stats = api_as(alice).get("/api/v1/generations/stats").json()
    assert stats["total"] == 2
    assert stats["by_status"] == {
        "cancelled": {"count": 1, "credits_charged": 25},
        "pending": {"count": 1, "credits_charged": 25},
    }
    assert stats["by_model"] == {FLUX: {"count": 2, "credits_charged": 50}}


@pytest.mark.parametrize("kind", ["image", "video"])
def test_the_catalog_lists_active_models_by_kind(db, api, kind):
    response = api.get(f"/api/v1/models?kind={kind}&page_size=100")
    ids = [row["id"] for row in response.json()["results"]]
    assert len(ids) >= (8 if kind == "image" else 4)
    assert all(AIModel.objects.get(pk=i).kind == kind for i in ids)


def test_an_inactive_model_disappears_from_the_catalog(db, api):
    AIModel.objects.filter(pk=FLUX).update(is_active=False)
    ids = [row["id"] for row in api.get("/api/v1/models?page_size=100").json()["results"]]
    assert FLUX not in ids
    assert api.get(f"/api/v1/models/{FLUX}").status_code == 404
    assert api.get("/api/v1/models/fal-ai/flux-pro/v1.1-ultra").json()["credits_cost"] == 50
