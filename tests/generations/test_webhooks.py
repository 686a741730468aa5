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
        "POST", "/api/v1/webhooks/local", raw, content_type="application/json", **{"HTTP_X_VELRO_SIGNATURE": header}
    )


OK = {
    "request_id": "req-123",
    "status": "OK",
    "payload": {"images": [{"url": "http://127.0.0.1:9/a.png", "width": 1024, "height": 1024}]},
}


@pytest.fixture(autouse=True)
def _cdn(fake_cdn, settings, tmp_path):
    """The payloads' image lives on a CDN on loopback; outputs are copied into MEDIA_ROOT."""
    from tests.fakes.cdn import image_bytes

    settings.MEDIA_ROOT = tmp_path
    OK["payload"]["images"][0]["url"] = fake_cdn.put("/a.png", image_bytes((96, 64)), "image/png")
    return fake_cdn


def test_a_signed_result_completes_the_generation(processing, client, tmp_path):
    response = post(client, OK)
    assert response.status_code == 200, response.content
    generation = Generation.objects.get(pk=processing.pk)
    assert generation.status == "completed"
    (output,) = generation.outputs
    # Copied into our storage, its size from the file rather than the payload's word.
    assert (output["path"], output["width"], output["height"]) == (
        f"generations/{generation.user_id}/{generation.pk}/0.png",
        96,
        64,
    )
    assert (tmp_path / output["path"]).is_file() and (tmp_path / output["thumbnail_path"]).is_file()


def test_a_result_whose_file_is_not_an_image_fails_and_refunds(processing, client, alice, fake_cdn, tmp_path):
    url = fake_cdn.put("/oops.html", b"<html><script>alert(1)</script></html>", "image/png")
    response = post(client, {**OK, "payload": {"images": [{"url": url, "width": 64, "height": 64}]}})
    assert response.status_code == 200, response.content
    generation = Generation.objects.get(pk=processing.pk)
    assert generation.status == "failed" and "not a usable image" in generation.error_message
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100
    assert not any(tmp_path.rglob("*.*"))  # nothing stored


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


def test_a_replayed_delivery_is_a_409_and_changes_nothing(processing, client):
    raw = json.dumps({"request_id": "req-123", "status": "ERROR", "error": "x"}).encode()
    header = sign(raw, secret=SECRET)
    first = client.generic(
        "POST", "/api/v1/webhooks/local", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE=header
    )
    again = client.generic(
        "POST", "/api/v1/webhooks/local", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE=header
    )
    assert (first.status_code, again.status_code) == (200, 409)
    assert again.json()["code"] == "replayed_delivery"
    assert "(applied)" in again.json()["detail"]
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
    response = api_as(alice).post("/api/v1/webhooks/local", OK, format="json")
    assert response.status_code == 401
    assert SIGNATURE_HEADER in response.headers.get("WWW-Authenticate", "")


def send(client, raw: bytes, header: str):
    return client.generic(
        "POST", "/api/v1/webhooks/local", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE=header
    )


def delivery(body: dict) -> tuple[bytes, str]:
    raw = json.dumps(body).encode()
    return raw, sign(raw, secret=SECRET)


def test_a_delivery_refused_for_an_unknown_generation_cannot_be_replayed_once_it_exists(processing, client):
    raw, header = delivery({**OK, "request_id": "req-later"})
    assert send(client, raw, header).status_code == 404
    Generation.objects.filter(pk=processing.pk).update(provider_request_id="req-later")
    replay = send(client, raw, header)
    assert replay.status_code == 409, replay.content
    assert replay.json()["code"] == "replayed_delivery"
    assert "refused" in replay.json()["detail"]
    assert Generation.objects.get(pk=processing.pk).status == "processing"  # not applied


def test_a_delivery_refused_for_the_wrong_state_cannot_be_replayed_later(alice, client):
    services.generation_create(user=alice, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="a fox")
    pending = Generation.objects.get(user=alice)
    raw, header = delivery({"generation_id": str(pending.pk), "status": "ERROR", "error": "x"})
    assert send(client, raw, header).status_code == 409  # still pending: not applied
    services.generation_claim_next()  # now processing: the same delivery would apply
    replay = send(client, raw, header)
    assert (replay.status_code, replay.json()["code"]) == (409, "replayed_delivery")
    assert Generation.objects.get(pk=pending.pk).status == "processing"
    assert not CreditTransaction.objects.filter(generation_id=pending.pk, type="refund").exists()


def test_every_delivery_is_recorded_once_with_its_outcome(processing, client):
    from generations.models import WebhookDelivery

    bad_payload, bad_header = delivery({"request_id": "req-123", "status": "OK", "payload": {"images": []}})
    assert send(client, bad_payload, bad_header).status_code == 400
    assert send(client, bad_payload, bad_header).status_code == 409
    wrong = sign(b"another body", secret=SECRET)
    assert send(client, json.dumps(OK).encode(), wrong).status_code == 401
    good, good_header = delivery(OK)
    assert send(client, good, good_header).status_code == 200

    rows = {
        row.signature: (row.outcome, row.status_code, row.generation_id)
        for row in WebhookDelivery.objects.order_by("received_at", "id")
    }
    digest = lambda header: header.split("v1=", 1)[1]  # noqa: E731
    assert rows == {
        digest(bad_header): ("refused", 400, None),
        digest(wrong): ("refused", 401, None),
        digest(good_header): ("applied", 200, processing.pk),
    }
    assert WebhookDelivery.objects.get(signature=digest(bad_header)).reason.startswith("payload")
