"""POST /api/v1/webhooks/<provider>: HMAC-signed results; anything else changes nothing."""

import json
import time

import pytest

from accounts.models import Profile
from credits.models import CreditTransaction
from generations import services
from generations.models import AIModel, Generation
from generations.webhooks import SIGNATURE_HEADER, sign

SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.WEBHOOK_SECRET = SECRET


@pytest.fixture
def processing(alice):
    services.generation_create(user=alice, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="a fox")
    generation = services.generation_claim_next()
    Generation.objects.filter(pk=generation.pk).update(provider_request_id="req-123")
    return generation


def post(client, body: dict, *, signature=None, secret=SECRET, timestamp=None):
    raw = json.dumps(body).encode()
    header = signature if signature is not None else sign(raw, secret=secret, timestamp=timestamp)
    return client.generic(
        "POST", "/api/v1/webhooks/fal", raw, content_type="application/json", **{"HTTP_X_VELRO_SIGNATURE": header}
    )


OK = {
    "request_id": "req-123",
    "status": "OK",
    "payload": {"images": [{"url": "https://cdn.example/a.png", "width": 1024, "height": 1024}]},
}


def test_a_signed_result_completes_the_generation(processing, client):
    response = post(client, OK)
    assert response.status_code == 200, response.content
    generation = Generation.objects.get(pk=processing.pk)
    assert generation.status == "completed"
    assert generation.outputs[0]["url"] == "https://cdn.example/a.png"


def test_a_signed_error_fails_and_refunds(processing, client, alice):
    response = post(client, {"request_id": "req-123", "status": "ERROR", "error": "NSFW filter"})
    assert response.status_code == 200
    generation = Generation.objects.get(pk=processing.pk)
    assert (generation.status, generation.error_message) == ("failed", "NSFW filter")
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"signature": "t=1,v1=deadbeef"},
        {"signature": ""},
        {"signature": "garbage"},
        {"secret": "the-wrong-secret"},
        {"timestamp": int(time.time()) - 3600},
    ],
    ids=["wrong-digest", "missing", "malformed", "wrong-secret", "expired"],
)
def test_a_bad_signature_is_a_401_and_changes_nothing(processing, client, kwargs):
    response = post(client, OK, **kwargs)
    assert response.status_code == 401
    assert Generation.objects.get(pk=processing.pk).status == "processing"


def test_a_replayed_delivery_is_a_401(processing, client):
    raw = json.dumps({"request_id": "req-123", "status": "ERROR", "error": "x"}).encode()
    header = sign(raw, secret=SECRET)
    first = client.generic(
        "POST", "/api/v1/webhooks/fal", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE=header
    )
    again = client.generic(
        "POST", "/api/v1/webhooks/fal", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE=header
    )
    assert (first.status_code, again.status_code) == (200, 401)
    assert CreditTransaction.objects.filter(generation_id=processing.pk, type="refund").count() == 1


def test_webhooks_are_refused_when_not_configured(processing, client, settings):
    settings.WEBHOOK_SECRET = ""
    assert post(client, OK).status_code == 401


def test_a_result_for_a_cancelled_or_finished_generation_is_a_409(processing, client):
    services.generation_fail(generation=processing, error="swept")
    response = post(client, OK)
    assert response.status_code == 409
    assert Generation.objects.get(pk=processing.pk).status == "failed"


def test_a_malformed_payload_is_a_400(processing, client):
    response = post(client, {"request_id": "req-123", "status": "OK", "payload": {"images": []}})
    assert response.status_code == 400
    assert Generation.objects.get(pk=processing.pk).status == "processing"


def test_an_unknown_request_is_a_404(processing, client):
    assert post(client, {**OK, "request_id": "nope"}).status_code == 404


def test_a_user_token_is_not_a_webhook_signature(processing, api_as, alice):
    response = api_as(alice).post("/api/v1/webhooks/fal", OK, format="json")
    assert response.status_code == 401
    assert SIGNATURE_HEADER in response.headers.get("WWW-Authenticate", "")
