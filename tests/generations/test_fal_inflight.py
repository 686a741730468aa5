"""Submit and release against the fake fal (tests/fakes/fal.py): the worker submits and moves
on; a signed webhook or a poll brings the result; outputs are copied in; cancels, time-outs,
retries and progress (issue 19)."""

import json
import time

import pytest
from django.core.management import call_command

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.services import credits_grant
from generations import services
from generations.fal_webhooks import KEYS
from generations.inflight import InFlight
from generations.models import AIModel, Generation, WebhookDelivery
from tests.factories import UserFactory
from tests.fakes.fal import FakeFal

FLUX = "fal-ai/flux/dev"  # image, 25 credits
VEO = "fal-ai/veo3"  # video, 500 credits


@pytest.fixture
def fal(settings, tmp_path):
    with FakeFal() as fake:
        fake.use(settings)
        settings.GENERATION_PROVIDER = "fal"
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.GENERATION_POLL_INTERVAL = 0.05
        settings.GENERATION_POLL_MAX_INTERVAL = 0.2
        settings.FAL_JWKS_REFRESH_SECONDS = 0
        KEYS.clear()
        yield fake
        KEYS.clear()


@pytest.fixture
def inflight():
    worker = InFlight(concurrency=4, max_in_flight=50)
    yield worker
    worker.close()


def create(user, model=FLUX, **kwargs) -> Generation:
    parameters = kwargs.pop("parameters", {"width": 256, "height": 256} if model == FLUX else {})
    return services.generation_create(
        user=user, ai_model=AIModel.objects.get(pk=model), prompt="a fox", parameters=parameters, **kwargs
    )


def drive(inflight, until, timeout=15.0):
    """The worker loop's steps (claim, hand over, step) until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while inflight.capacity() > 0 and (generation := services.generation_claim_next()) is not None:
            inflight.hand_over(generation, "fal")
        inflight.step()
        if until():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def status_of(generation) -> str:
    return Generation.objects.get(pk=generation.pk).status


def deliver(client, fal, delivery, *, headers=None, body=None):
    """POST a delivery the fake held to the app, signed as fal signs it (or as given)."""
    body = delivery.body if body is None else body
    signed = headers if headers is not None else fal.sign(body, delivery.request_id)
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in signed.items()}
    return client.generic("POST", "/api/v1/webhooks/fal", body, content_type="application/json", **extra)


def refunds(generation) -> int:
    return CreditTransaction.objects.filter(generation_id=generation.pk, type="refund").count()


def test_polling_completes_it_and_copies_the_outputs_in(fal, inflight, alice, tmp_path, api_as):
    generation = create(alice)
    drive(inflight, lambda: status_of(generation) == "completed")
    generation.refresh_from_db()
    submit = next(call for call in fal.calls if call.kind == "submit")
    assert submit.path == f"/{FLUX}" and "fal_webhook" not in submit.path  # webhooks off: no URL given
    assert submit.body["prompt"] == "a fox" and submit.body["image_size"] == {"width": 256, "height": 256}
    assert generation.provider == "fal" and generation.provider_request_id in fal.requests
    assert generation.provider_result is None  # fal's CDN URLs are not kept
    (output,) = generation.outputs
    assert (tmp_path / "media" / output["path"]).read_bytes().startswith(b"\x89PNG")
    assert generation.provider_inference_seconds == pytest.approx(fal.run_seconds)
    assert generation.progress == {"stage": "completed", "percentage": 100}
    shown = api_as(alice).get(f"/api/v1/generations/{generation.pk}").json()
    assert shown["status"] == "completed" and shown["progress"]["percentage"] == 100
    assert shown["outputs"][0]["url"].startswith("http")


def test_the_worker_submits_and_moves_on(fal, inflight, db):
    """One worker holds many requests at once: all are submitted before any finishes."""
    fal.run_seconds = 2.0
    generations = [create(UserFactory()) for _ in range(12)]
    submitted = Generation.objects.filter(pk__in=[g.pk for g in generations]).exclude(provider_request_id="")
    drive(inflight, lambda: submitted.count() == 12, timeout=5)
    assert [status_of(g) for g in generations] == ["processing"] * 12  # none waited for another
    drive(inflight, lambda: all(status_of(g) == "completed" for g in generations), timeout=15)
    assert fal.count("submit") == 12


def test_a_signed_webhook_completes_it_without_polling(fal, inflight, alice, client, settings):
    settings.PUBLIC_BASE_URL = "https://velro.example"
    settings.GENERATION_WEBHOOK_GRACE = 60
    fal.hold_webhooks = True
    generation = create(alice)
    drive(inflight, lambda: fal.held, timeout=5)
    submit = next(call for call in fal.calls if call.kind == "submit")
    assert "fal_webhook=https%3A%2F%2Fvelro.example%2Fapi%2Fv1%2Fwebhooks%2Ffal" in submit.path
    (delivery,) = fal.held
    response = deliver(client, fal, delivery)
    assert response.status_code == 202, response.content
    assert Generation.objects.get(pk=generation.pk).provider_result["via"] == "webhook"
    drive(inflight, lambda: status_of(generation) == "completed", timeout=5)
    assert fal.count("status") == 1  # only the metrics after the webhook; no polling
    generation.refresh_from_db()
    assert len(generation.outputs) == 1 and generation.provider_inference_seconds is not None
    record = WebhookDelivery.objects.get(signature=delivery_signature(fal, response))
    assert (record.provider, record.outcome, record.generation_id) == ("fal", "applied", generation.pk)


def delivery_signature(fal, response):
    return response.wsgi_request.headers["X-Fal-Webhook-Signature"]


def test_a_webhook_reporting_an_error_fails_and_refunds_once(fal, inflight, alice, client, settings):
    settings.PUBLIC_BASE_URL = "https://velro.example"
    fal.hold_webhooks, fal.outcome, fal.webhook_copies = True, "error", 2
    generation = create(alice)
    drive(inflight, lambda: len(fal.held) == 2, timeout=5)
    first, second = fal.held
    assert deliver(client, fal, first).status_code == 202
    # A second delivery (fal signs each one afresh) changes nothing. Its timestamp is a
    # second ahead: the first was signed at "now" or earlier, and the same second would
    # be the same (deterministic ED25519) signature, i.e. the same delivery replayed.
    again = fal.sign(second.body, second.request_id, timestamp=int(time.time()) + 1)
    assert deliver(client, fal, second, headers=again).status_code == 409
    drive(inflight, lambda: status_of(generation) == "failed", timeout=5)
    assert "422" in Generation.objects.get(pk=generation.pk).error_message
    assert refunds(generation) == 1
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100
    assert WebhookDelivery.objects.filter(provider="fal").count() == 2


@pytest.fixture
def submitted(fal, inflight, alice, settings):
    """A generation fal holds (webhooks on, one delivery held), and its delivery."""
    settings.PUBLIC_BASE_URL = "https://velro.example"
    fal.hold_webhooks = True
    generation = create(alice)
    drive(inflight, lambda: fal.held, timeout=5)
    return generation, fal.held[0]


def unchanged(generation) -> bool:
    row = Generation.objects.get(pk=generation.pk)
    return row.status == "processing" and row.provider_result is None


def test_forged_stale_tampered_or_unsigned_webhooks_change_nothing(fal, submitted, client):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    generation, delivery = submitted
    forged = fal.sign(delivery.body, delivery.request_id, key=Ed25519PrivateKey.generate())
    # Well past the 300 s tolerance both ways: +301 became +300 (accepted) when the check
    # ran a second after the signing.
    stale = fal.sign(delivery.body, delivery.request_id, timestamp=int(time.time()) - 400)
    future = fal.sign(delivery.body, delivery.request_id, timestamp=int(time.time()) + 400)
    tampered_body = delivery.body.replace(b'"OK"', b'"ERROR"')
    other_request = {
        **fal.sign(delivery.body, delivery.request_id, timestamp=int(time.time()) - 2),
        "X-Fal-Webhook-Request-Id": "someone-else",
    }
    missing = {k: v for k, v in fal.sign(delivery.body, delivery.request_id).items() if not k.endswith("User-Id")}
    for headers, body in [
        (forged, None),
        (stale, None),
        (future, None),
        (fal.sign(delivery.body, delivery.request_id), tampered_body),
        (other_request, None),
        (missing, None),
        ({}, None),
    ]:
        response = deliver(client, fal, delivery, headers=headers, body=body)
        assert response.status_code == 401, (headers, response.content)
        assert unchanged(generation)
    # Each one with a signature recorded, refused (without one there is no id to record).
    refused = WebhookDelivery.objects.filter(provider="fal", outcome="refused")
    assert refused.count() == 5 and set(refused.values_list("status_code", flat=True)) == {401}


def test_a_delivery_signed_for_another_fal_account_is_refused(fal, submitted, client, settings):
    generation, delivery = submitted
    settings.FAL_WEBHOOK_USER_ID = "our-fal-account"
    assert deliver(client, fal, delivery).status_code == 401  # the fake signs as fake-fal-user
    assert unchanged(generation)
    fal.user_id = "our-fal-account"
    assert deliver(client, fal, delivery).status_code == 202


def test_a_replayed_delivery_is_a_409_and_changes_nothing(fal, submitted, client):
    generation, delivery = submitted
    headers = fal.sign(delivery.body, delivery.request_id)
    assert deliver(client, fal, delivery, headers=headers).status_code == 202
    Generation.objects.filter(pk=generation.pk).update(provider_result=None)  # as if not received
    replay = deliver(client, fal, delivery, headers=headers)
    assert replay.status_code == 409 and replay.json()["code"] == "replayed_delivery"
    assert Generation.objects.get(pk=generation.pk).provider_result is None


def test_a_request_id_not_ours_or_a_body_not_matching_changes_nothing(fal, submitted, client):
    generation, delivery = submitted
    body = json.loads(delivery.body)
    stranger = json.dumps({**body, "request_id": "not-ours"}).encode()
    response = deliver(client, fal, delivery, headers=fal.sign(stranger, "not-ours"), body=stranger)
    assert response.status_code == 404
    mismatched = json.dumps({**body, "request_id": "not-ours"}).encode()
    response = deliver(client, fal, delivery, headers=fal.sign(mismatched, delivery.request_id), body=mismatched)
    assert response.status_code == 400 and "request_id" in response.json()["errors"]
    assert unchanged(generation)
    assert WebhookDelivery.objects.filter(provider="fal", outcome="refused").count() == 2


def test_a_cancelled_generation_takes_no_result(fal, submitted, client):
    generation, delivery = submitted
    Generation.objects.filter(pk=generation.pk).update(status="failed")
    assert deliver(client, fal, delivery).status_code == 409
    assert Generation.objects.get(pk=generation.pk).provider_result is None


def test_a_rotated_key_is_fetched_and_padded_keys_are_read(fal, submitted, client):
    generation, delivery = submitted
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = fal.sign(delivery.body, delivery.request_id, key=Ed25519PrivateKey.generate())
    assert deliver(client, fal, delivery, headers=forged).status_code == 401  # the keys are fetched and kept
    fal.rotate_key(keep_old=False)
    fal.padded_jwks = True
    jwks_fetches = fal.count("jwks")
    assert deliver(client, fal, delivery).status_code == 202  # unknown key: the set is fetched again
    assert fal.count("jwks") == jwks_fetches + 1
    assert Generation.objects.get(pk=generation.pk).provider_result is not None


def test_keys_that_cannot_be_fetched_are_a_503(fal, submitted, client, settings):
    generation, delivery = submitted
    settings.FAL_JWKS_URL = "http://keys.example.com/jwks.json"  # plain http off loopback: refused
    assert deliver(client, fal, delivery).status_code == 503
    settings.FAL_JWKS_URL = fal.base + "/missing.json"
    assert deliver(client, fal, delivery).status_code == 503
    assert unchanged(generation)


def test_cancelling_a_queued_generation_cancels_it_at_fal_and_refunds(fal, inflight, alice, api_as):
    fal.queue_seconds = 30
    generation = create(alice)
    drive(inflight, lambda: Generation.objects.get(pk=generation.pk).provider_request_id, timeout=5)
    request_id = Generation.objects.get(pk=generation.pk).provider_request_id
    response = api_as(alice).post(f"/api/v1/generations/{generation.pk}/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert fal.state(request_id) == "CANCELLED" and fal.count("cancel") == 1
    assert refunds(generation) == 1 and Profile.objects.get(pk=alice.pk).credits_balance == 100
    # A late poll or webhook changes nothing now.
    assert services.generation_result_received(request_id=request_id, result={"status": "OK"}) is False


def test_a_generation_fal_is_running_cannot_be_cancelled(fal, inflight, alice, api_as):
    fal.run_seconds = 30
    generation = create(alice)
    drive(inflight, lambda: Generation.objects.get(pk=generation.pk).provider_request_id, timeout=5)
    time.sleep(0.05)
    response = api_as(alice).post(f"/api/v1/generations/{generation.pk}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable" and "running" in response.json()["detail"]
    assert status_of(generation) == "processing" and refunds(generation) == 0


def test_a_timed_out_request_is_cancelled_at_fal_then_failed_and_refunded(fal, inflight, alice, settings):
    fal.queue_seconds = 60
    settings.FAL_TIMEOUT = 0.5
    generation = create(alice)
    drive(inflight, lambda: status_of(generation) == "failed", timeout=10)
    assert fal.count("cancel") == 1
    request_id = Generation.objects.get(pk=generation.pk).provider_request_id
    assert fal.state(request_id) == "CANCELLED"
    error = Generation.objects.get(pk=generation.pk).error_message
    assert "timed out" in error and "cancelled at fal" in error
    assert refunds(generation) == 1


def test_the_sweep_cancels_at_fal_before_it_fails(fal, inflight, alice):
    fal.queue_seconds = 60
    generation = create(alice)
    drive(inflight, lambda: Generation.objects.get(pk=generation.pk).provider_request_id, timeout=5)
    assert services.generation_sweep(timeout_seconds=-1) == 1
    assert fal.count("cancel") == 1 and status_of(generation) == "failed" and refunds(generation) == 1


def test_retryable_submit_errors_are_retried_with_backoff(fal, inflight, alice):
    fal.fail("submit", 429, retry_after=0.2)
    fal.fail("submit", 503)
    generation = create(alice)
    started = time.monotonic()
    drive(inflight, lambda: status_of(generation) == "completed", timeout=15)
    assert time.monotonic() - started >= 0.2  # Retry-After was waited for
    assert Generation.objects.get(pk=generation.pk).attempts == 3
    assert fal.count("submit") == 3


def test_submit_errors_past_the_attempts_fail_and_refund(fal, inflight, alice, settings):
    settings.GENERATION_MAX_ATTEMPTS = 2
    fal.fail("submit", 503, times=5)
    generation = create(alice)
    drive(inflight, lambda: status_of(generation) == "failed", timeout=15)
    row = Generation.objects.get(pk=generation.pk)
    assert row.attempts == 2 and "after 2 attempt(s)" in row.error_message and refunds(generation) == 1
    fal_calls = fal.count("submit")
    assert fal_calls == 2


def test_a_client_error_is_not_retried(fal, inflight, alice):
    fal.fail("submit", 422, body={"detail": [{"msg": "prompt rejected"}]})
    generation = create(alice)
    drive(inflight, lambda: status_of(generation) == "failed", timeout=5)
    assert fal.count("submit") == 1 and refunds(generation) == 1


def test_progress_shows_the_queue_position_then_the_stage(fal, inflight, alice, bob, api_as):
    fal.queue_seconds = 30
    ahead = [create(bob) for _ in range(2)]
    drive(inflight, lambda: len(fal.requests) == 2, timeout=5)  # at fal first
    generation = create(alice)
    drive(inflight, lambda: "queue_position" in Generation.objects.get(pk=generation.pk).progress, timeout=5)
    progress = api_as(alice).get(f"/api/v1/generations/{generation.pk}").json()["progress"]
    assert progress["stage"] == "queued" and progress["queue_position"] == 2
    assert all(Generation.objects.get(pk=g.pk).progress["stage"] == "queued" for g in ahead)


def test_progress_while_running_has_a_percentage():
    from generations.providers.fal import progress_from_status

    running = {"status": "IN_PROGRESS", "logs": [{"message": "step 5/20"}, {"message": "step 9/20"}]}
    assert progress_from_status(running) == {"stage": "running", "message": "step 9/20", "percentage": 45}
    assert (
        progress_from_status({"status": "IN_PROGRESS", "logs": [{"message": "Sampling 73%|###"}]})["percentage"] == 73
    )
    assert progress_from_status({"status": "IN_QUEUE", "queue_position": 0}) == {"stage": "queued", "queue_position": 0}


def test_polling_errors_back_off_and_do_not_fail_it(fal, inflight, alice):
    fal.fail("status", 503, times=3)
    generation = create(alice)
    drive(inflight, lambda: status_of(generation) == "completed", timeout=15)
    assert fal.count("status") >= 4


def test_a_video_model_completes_with_its_video(fal, inflight, alice, tmp_path):
    credits_grant(user=alice, amount=500, reason="a video")
    generation = create(alice, VEO, parameters={"duration": 5})
    drive(inflight, lambda: status_of(generation) == "completed", timeout=15)
    (output,) = Generation.objects.get(pk=generation.pk).outputs
    assert output["mime_type"] == "video/mp4" and output["path"].endswith(".mp4")


def test_run_worker_once_waits_for_its_requests_in_flight(fal, alice, bob):
    generations = [create(alice), create(bob)]
    call_command("run_worker", "--once", "--idle-sleep", "0.05", "--sweep-every", "3600")
    assert [status_of(g) for g in generations] == ["completed", "completed"]


def test_the_local_provider_still_runs_in_the_worker(alice, settings, tmp_path):
    settings.GENERATION_PROVIDER = "local"
    settings.MEDIA_ROOT = tmp_path
    generation = create(alice)
    call_command("run_worker", "--once", "--idle-sleep", "0.05")
    row = Generation.objects.get(pk=generation.pk)
    assert row.status == "completed" and row.provider == "" and row.provider_request_id == f"local-{row.pk}"


def test_a_row_a_worker_works_on_is_leased(fal, alice):
    """Claimed for a poll or submit: leased CALL_LEASE-like seconds; with a result to copy
    in: the longer finishing lease. Another worker takes it again only after the lease."""
    from datetime import timedelta

    from django.utils import timezone

    generation = create(alice)
    services.generation_release(generation=services.generation_claim_next(), provider="fal")
    (claimed,) = services.generation_claim_due(limit=10, lease_seconds=60, finish_lease_seconds=600)
    assert claimed.pk == generation.pk
    assert services.generation_claim_due(limit=10, lease_seconds=60) == []  # leased
    lease = Generation.objects.get(pk=generation.pk).next_poll_at - timezone.now()
    assert timedelta(seconds=55) < lease <= timedelta(seconds=60)
    Generation.objects.filter(pk=generation.pk).update(
        provider_result={"status": "OK"}, next_poll_at=timezone.now() - timedelta(seconds=1)
    )
    assert [g.pk for g in services.generation_claim_due(limit=10, lease_seconds=60, finish_lease_seconds=600)] == [
        generation.pk
    ]
    lease = Generation.objects.get(pk=generation.pk).next_poll_at - timezone.now()
    assert timedelta(seconds=595) < lease <= timedelta(seconds=600)


def test_an_outcome_waits_while_the_database_fails_and_nothing_is_resubmitted(fal, inflight, alice, monkeypatch):
    """The worker's loop backs off on a database error (run_worker); the provider's answer
    it could not record is kept and recorded at the next step, never asked for again."""
    from django.db import OperationalError

    real, failures = services.generation_submitted, []

    def down_once(**kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "generation_submitted", down_once)
    generation = create(alice)
    inflight.hand_over(services.generation_claim_next(), "fal")
    deadline = time.monotonic() + 5
    with pytest.raises(OperationalError):
        while time.monotonic() < deadline:
            inflight.step()
            time.sleep(0.02)
    assert inflight.done  # the submit's answer, kept
    drive(inflight, lambda: status_of(generation) == "completed", timeout=10)
    assert fal.count("submit") == 1 and failures == [1]
