"""Races through the API, each request in its own thread on its own connection
(ATOMIC_REQUESTS: one transaction per request), against committed data.

* 32 registrations of one email: one identity, one profile, one sign-up bonus; every
  other request is a 400 on the email field, never a 500.
* 16 generation creates that together cost more than the balance: the balance never
  goes negative, each accepted one is charged once, each refused one (402) wrote nothing.
* The owner's cancel, a worker's claim and a signed provider webhook on one generation:
  one final state, consistent with who won, refunded at most once.
"""

import json
import random
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Profile, User
from credits.models import CreditTransaction
from generations import services
from generations.models import AIModel, Generation
from generations.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import bearer
from tests.factories import UserFactory
from tests.helpers import run_together

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 32
TAKEN = "A user with this email already exists."
PASSWORD = "velro-race-Qz7!pW3x-orbit"


@pytest.fixture
def no_register_limits(settings):
    """Registration is rate limited per IP and per email (429); this test is about the
    race, not the limits."""
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {
        **rest.get("DEFAULT_THROTTLE_RATES", {}),
        "register_ip": None,
        "register_email": None,
    }
    settings.REST_FRAMEWORK = rest


def register(email: str, index: int):
    response = Client().post(
        "/api/v1/auth/register",
        {"email": email, "password": PASSWORD, "full_name": "Racing Person"},
        content_type="application/json",
        REMOTE_ADDR=f"10.71.{index // 200}.{index % 200 + 1}",  # 32 different clients
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "spellings",
    [
        ["race@example.com"],
        # Emails are case-insensitive: differently cased spellings are one address.
        ["Case.Race@Example.com", "case.race@example.com", "CASE.RACE@EXAMPLE.COM", " case.race@example.COM "],
    ],
    ids=["same-spelling", "mixed-case"],
)
def test_concurrent_registrations_of_one_email_make_one_account(spellings, no_register_limits):
    email = spellings[0].strip().lower()
    targets = [lambda i=i: register(spellings[i % len(spellings)], i) for i in range(THREADS)]

    results = run_together(*targets)

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], errors
    codes = sorted(code for code, _ in results)
    assert codes == [201] + [400] * (THREADS - 1), [r for r in results if r[0] not in (201, 400)]
    (created,) = [body for code, body in results if code == 201]
    assert created["user"]["email"] == email and created["user"]["credits_balance"] == 100
    assert created["access"] and created["refresh"]
    for code, body in results:
        if code == 400:
            assert body == {"detail": f"email: {TAKEN}", "code": "invalid", "errors": {"email": [TAKEN]}}, body

    users = User.objects.filter(email__iexact=email)
    assert users.count() == 1
    user = users.get()
    assert str(user.pk) == created["user"]["id"]
    assert Profile.objects.filter(email__iexact=email).count() == 1
    assert Profile.objects.get(pk=user.pk).credits_balance == 100
    ledger = CreditTransaction.objects.filter(user_id=user.pk)
    assert list(ledger.values_list("type", "amount")) == [("signup_bonus", 100)]
    # Nothing half-made by the losers: no identity, profile or ledger row of anyone else.
    assert User.objects.count() == Profile.objects.count() == 1
    assert CreditTransaction.objects.count() == 1


# --- spending beyond the balance ---------------------------------------------------------


@pytest.fixture
def model():
    # Own row: transactional tests flush the seeded catalog when they end.
    return AIModel.objects.update_or_create(
        pk="test/faults-race-model",
        defaults={"display_name": "Race", "kind": "image", "credits_cost": 30, "provider": "local"},
    )[0]


def api_client(user) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(user))
    return client


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


def test_concurrent_api_creates_beyond_the_balance_never_overspend(model):
    user = UserFactory()  # 100 credits: three generations at 30, then 10 left

    def create():
        response = api_client(user).post("/api/v1/generations", {"ai_model": model.pk, "prompt": "a race"})
        return response.status_code, response.json()

    results = run_together(*[create] * 16)

    assert not [r for r in results if isinstance(r, Exception)], results
    accepted = [body for code, body in results if code == 201]
    refused = [body for code, body in results if code == 402]
    assert (len(accepted), len(refused)) == (3, 13), [code for code, _ in results]
    assert all(body["code"] == "insufficient_credits" and body["detail"] for body in refused), refused
    assert all(body["status"] == "pending" and body["credits_charged"] == 30 for body in accepted)

    assert balance(user) == 10
    stored = {str(pk) for pk in Generation.objects.filter(user=user).values_list("id", flat=True)}
    assert stored == {body["id"] for body in accepted}
    usage = CreditTransaction.objects.filter(user=user, type="usage")
    assert usage.count() == len(accepted)
    assert sorted(str(pk) for pk in usage.values_list("generation_id", flat=True)) == sorted(stored)
    assert set(usage.values_list("amount", flat=True)) == {-30}
    assert not CreditTransaction.objects.filter(user=user, type="refund").exists()


# --- cancel vs claim vs webhook ------------------------------------------------------------

WEBHOOK_SECRET = "faults-webhook-secret-0123456789"
ROUNDS = 12
SCENARIOS = [
    (0.0, 0.0, 0.0),  # all at once
    (0.0, 0.25, 0.0),  # the cancel first
    (0.25, 0.0, 0.1),  # the claim, then the webhook
    (0.35, 0.15, 0.0),  # the webhook too early (pending), then the claim
]


def cancel_via_api(user, generation_id, delay):
    time.sleep(delay)
    response = api_client(user).post(f"/api/v1/generations/{generation_id}/cancel")
    return "cancel", response.status_code, response.json()


def claim(delay):
    time.sleep(delay)
    return "claim", services.generation_claim_next()


def webhook(generation_id, outcome: str, delay, image_url: str):
    time.sleep(delay)
    if outcome == "OK":
        body = {
            "generation_id": str(generation_id),
            "status": "OK",
            "payload": {"images": [{"url": image_url, "width": 64, "height": 64}]},
        }
    else:
        body = {"generation_id": str(generation_id), "status": "ERROR", "error": "the provider gave up"}
    raw = json.dumps(body).encode()
    response = Client().generic(
        "POST",
        "/api/v1/webhooks/local",
        raw,
        content_type="application/json",
        **{f"HTTP_{SIGNATURE_HEADER.upper().replace('-', '_')}": sign(raw, secret=WEBHOOK_SECRET)},
    )
    return "webhook", response.status_code, response.json()


def test_cancel_claim_and_webhook_racing_end_in_one_state_refunded_at_most_once(model, settings, fake_cdn, tmp_path):
    from tests.fakes.cdn import image_bytes

    settings.WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MEDIA_ROOT = tmp_path
    image_url = fake_cdn.put("/race.png", image_bytes((64, 64)), "image/png")
    outcomes = []
    rng = random.Random(20240607)
    for round_ in range(ROUNDS):
        user = UserFactory()
        generation = services.generation_create(user=user, ai_model=model, prompt=f"round {round_}")
        kind = "OK" if (round_ // len(SCENARIOS)) % 2 else "ERROR"
        # Head starts (cancel, claim, webhook) that favour each order in turn, plus jitter
        # (seeded, so a failure replays); the first scenario is a plain race.
        head_starts = SCENARIOS[round_ % len(SCENARIOS)]
        delays = [start + rng.uniform(0, 0.02) for start in head_starts]

        results = run_together(
            lambda: cancel_via_api(user, generation.pk, delays[0]),  # noqa: B023
            lambda: claim(delays[1]),  # noqa: B023
            lambda: webhook(generation.pk, kind, delays[2], image_url),  # noqa: B023
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        (_, cancel_code, cancel_body), (_, claimed), (_, hook_code, hook_body) = results
        generation.refresh_from_db()
        status = generation.status
        outcomes.append(status)
        assert cancel_code in (200, 409), cancel_body
        assert hook_code in (200, 409), hook_body
        assert claimed is None or claimed.pk == generation.pk, claimed
        assert status != "pending", "someone must have moved it"

        if cancel_code == 200:  # the cancel won: nobody else touched it
            assert status == "cancelled" and cancel_body["status"] == "cancelled"
            assert claimed is None and hook_code == 409
        else:  # the claim won; the webhook applied only if it came after the claim
            assert cancel_body["code"] == "conflict"
            assert claimed is not None
            if hook_code == 200:
                assert status == ("completed" if kind == "OK" else "failed") == hook_body["status"]
            else:
                assert status == "processing" and hook_body["code"] == "conflict"
        if status == "completed":
            assert generation.outputs[0]["path"] == f"generations/{user.pk}/{generation.pk}/0.png"
            assert (tmp_path / generation.outputs[0]["path"]).is_file()  # copied in from the CDN
        if status == "failed":
            assert generation.error_message == "the provider gave up"

        refunds = CreditTransaction.objects.filter(generation=generation, type="refund").count()
        assert refunds == (1 if status in ("cancelled", "failed") else 0), (status, refunds)
        assert CreditTransaction.objects.filter(generation=generation, type="usage").count() == 1
        assert balance(user) == (100 if refunds else 70), results
    print("cancel/claim/webhook outcomes:", {s: outcomes.count(s) for s in set(outcomes)})
