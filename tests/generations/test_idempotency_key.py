"""An Idempotency-Key is held to the request it was first used with (as Stripe does).

Before the request fingerprint, the same key with another body silently returned the
first generation: a client bug (a key reused for a new prompt) lost the new request
without a word.
"""

import io
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image

from accounts.models import Profile
from generations.models import AIModel, Generation
from tests.generations.conftest import FLUX


def keyed(api_as, user, key):
    client = api_as(user)
    client.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_IDEMPOTENCY_KEY=key)
    return client


def create(client, **body):
    body.setdefault("ai_model", FLUX)
    body.setdefault("prompt", "a red fox in the snow")
    return client.post("/api/v1/generations", body, format="json")


def balance(user):
    return Profile.objects.get(pk=user.pk).credits_balance


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a grey wolf in the snow"},
        {"parameters": {"num_images": 2}},
        {"negative_prompt": "blurry"},
        {"ai_model": "fal-ai/flux/schnell"},
    ],
)
def test_the_same_key_with_another_request_is_a_422_naming_the_conflict(alice, api_as, change):
    client = keyed(api_as, alice, "order-42")
    first = create(client)
    assert first.status_code == 201
    second = create(client, **change)
    assert second.status_code == 422, second.json()
    assert second.json()["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in second.json()["detail"]
    assert Generation.objects.filter(user=alice).count() == 1  # nothing new, nothing charged twice
    assert balance(alice) == 75


def test_the_same_key_with_the_same_request_still_returns_the_first_charged_once(alice, api_as):
    client = keyed(api_as, alice, "order-43")
    body = {"parameters": {"width": 512, "height": 512}, "negative_prompt": "blurry"}
    first, second = create(client, **body), create(client, **body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert balance(alice) == 75


def _png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_reference_image_counts_by_its_content(alice, api_as, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = keyed(api_as, alice, "order-44")

    def post(data: bytes):
        return client.post(
            "/api/v1/generations",
            {"ai_model": FLUX, "prompt": "x", "reference_image": SimpleUploadedFile("ref.png", data, "image/png")},
            format="multipart",
        )

    red = _png("red")
    assert post(red).status_code == 201
    assert post(red).status_code == 200  # the same bytes again: a retry
    assert post(_png("blue")).status_code == 422  # the same name, other bytes
    assert Generation.objects.filter(user=alice).count() == 1


@pytest.fixture
def own_model(transactional_db):
    # Own row: transactional tests flush the seeded catalog when they end.
    return AIModel.objects.update_or_create(
        pk="test/idempotency-model",
        defaults={"display_name": "Idempotency", "kind": "image", "credits_cost": 25, "provider": "local"},
    )[0]


def test_concurrent_requests_with_one_key_and_different_bodies_make_one_generation(alice, api_as, own_model):
    """Racing requests: whichever commits first is the key's request; the other is a
    422 if its body differs (the database returns the first row, the service compares)."""
    results = {}
    barrier = threading.Barrier(2)

    def run(prompt):
        try:
            barrier.wait(timeout=10)
            response = create(keyed(api_as, alice, "race-1"), ai_model=own_model.pk, prompt=prompt)
            results[prompt] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(p,)) for p in ("a fox", "a wolf")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == [201, 422]
    assert Generation.objects.filter(user=alice).count() == 1
    assert balance(alice) == 75
