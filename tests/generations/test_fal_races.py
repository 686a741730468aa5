"""Webhooks and polls racing on real connections (issue 19): a result is taken once,
outputs are copied in once, counted once, and nothing is refunded twice."""

import time

import pytest
from django.core.cache import cache
from django.test import Client

from credits.models import CreditTransaction
from generations import services
from generations.fal_webhooks import KEYS
from generations.inflight import InFlight
from generations.models import AIModel, Generation, WebhookDelivery
from generations.outputs import outputs_bytes
from tests.factories import UserFactory
from tests.fakes.fal import FakeFal
from tests.helpers import run_together, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model():
    # Own row: transactional tests flush the seeded catalog when they end.
    return AIModel.objects.update_or_create(
        pk="test/race-fal-model",
        defaults={"display_name": "Race", "kind": "image", "credits_cost": 25, "provider": "fal"},
    )[0]


@pytest.fixture
def fal(settings, tmp_path):
    cache.clear()
    with FakeFal() as fake:
        fake.use(settings, public_base_url="https://velro.example")
        fake.hold_webhooks, fake.webhook_copies = True, 2
        settings.GENERATION_PROVIDER = "fal"
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.GENERATION_WEBHOOK_GRACE = 0  # polled at once too: webhook and poll race
        settings.GENERATION_POLL_INTERVAL = 0.01
        KEYS.clear()
        yield fake
        KEYS.clear()


def submitted(fal, model) -> tuple[Generation, list]:
    """A generation fal finished, its two webhook deliveries held back."""
    generation = services.generation_create(user=UserFactory(), ai_model=model, prompt="a race")
    claimed = services.generation_claim_next()
    services.generation_release(generation=claimed, provider="fal")
    worker = InFlight(concurrency=2, max_in_flight=10)
    try:
        wait_for(
            lambda: worker.step() is not None and Generation.objects.get(pk=generation.pk).provider_request_id,
            timeout=10,
            what="the submit",
        )
    finally:
        worker.close()
    wait_for(lambda: len(fal.held) == 2, timeout=10, what="fal to finish")
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=None)  # nobody polls before the race
    return generation, list(fal.held)


def post(fal, delivery, stamp_offset: int):
    headers = fal.sign(delivery.body, delivery.request_id, timestamp=int(time.time()) - stamp_offset)
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = Client().generic("POST", "/api/v1/webhooks/fal", delivery.body, content_type="application/json", **extra)
    return response.status_code


def finish_with(worker: InFlight, generation) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Generation.objects.get(pk=generation.pk).status == "processing":
        worker.step()
        time.sleep(0.01)


def test_two_webhooks_and_two_pollers_racing_complete_it_once(fal, model, tmp_path):
    generation, (first, second) = submitted(fal, model)
    Generation.objects.filter(pk=generation.pk).update(next_poll_at="2000-01-01T00:00:00Z")  # due for the pollers
    pollers = [InFlight(concurrency=2, max_in_flight=10), InFlight(concurrency=2, max_in_flight=10)]
    try:
        results = run_together(
            lambda: post(fal, first, 0),
            lambda: post(fal, second, 1),
            lambda: finish_with(pollers[0], generation),
            lambda: finish_with(pollers[1], generation),
        )
    finally:
        for poller in pollers:
            poller.close()
    assert not [r for r in results if isinstance(r, Exception)], results
    webhook_answers = sorted(results[:2])
    # At most one delivery's result was taken (a poll may have won); the others changed nothing.
    assert webhook_answers in ([202, 409], [409, 409]), webhook_answers
    row = Generation.objects.get(pk=generation.pk)
    assert row.status == "completed" and len(row.outputs) == 1
    # Copied in once: one file and its thumbnail, counted once.
    files = sorted(p.name for p in (tmp_path / "media" / "generations").rglob("*") if p.is_file())
    assert files == ["0.png", "0.thumb.webp"]
    assert row.storage_bytes == outputs_bytes(row.outputs)
    assert list(CreditTransaction.objects.filter(generation=generation).values_list("type", flat=True)) == ["usage"]
    assert WebhookDelivery.objects.filter(provider="fal").count() == 2


def test_a_cancel_racing_a_result_refunds_at_most_once(fal, model, settings):
    generation, (first, _) = submitted(fal, model)
    from tests.conftest import bearer

    owner = Generation.objects.get(pk=generation.pk).user

    def cancel():
        client = Client()
        return client.post(f"/api/v1/generations/{generation.pk}/cancel", **bearer(owner)).status_code

    results = run_together(lambda: post(fal, first, 0), cancel)
    assert not [r for r in results if isinstance(r, Exception)], results
    # fal already finished it: cancel is refused there (ALREADY_COMPLETED), the result stands.
    assert results == [202, 409]
    worker = InFlight(concurrency=2, max_in_flight=10)
    try:
        finish_with(worker, generation)
    finally:
        worker.close()
    assert Generation.objects.get(pk=generation.pk).status == "completed"
    assert CreditTransaction.objects.filter(generation=generation, type="refund").count() == 0
