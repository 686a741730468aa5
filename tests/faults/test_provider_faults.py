"""Provider errors, timeouts and malformed responses, through real worker processes.

``manage.py run_worker --once`` on the test database runs the fal provider against
a fake fal.ai queue (tests/faults/conftest.py) where each generation's prompt picks what
goes wrong. Every failure must end ``failed`` with the error in ``error_message`` (and
the fal request id in ``provider_request_id`` once fal gave one), refunded exactly once;
a transient 503 on submit is retried and the generation completes, charged once.
"""

import re
import subprocess
import sys
import time

import pytest

from accounts.models import Profile
from credits.models import CreditTransaction
from generations import services
from generations.models import AIModel, Generation
from tests.factories import UserFactory
from tests.faults.conftest import FAL_KEY, IMAGE_PATH
from tests.helpers import ROOT, database_url, manage_env

pytestmark = pytest.mark.django_db(transaction=True)

COST = 5
FAL_TIMEOUT = 1
# prompt (the fake's behaviour) → (what error_message contains, whether a request id is known)
FAILURES = {
    # Tried GENERATION_MAX_ATTEMPTS (3) times, 1 and 2 s apart (generations/inflight.py).
    "submit-500": ("fal.ai submit failed with HTTP 500", False),
    "no-request-id": ("fal.ai accepted the submit but returned no request_id", False),
    "result-500": ("HTTP 500", True),
    "hang": ("timed out", True),
    "malformed": ("fal.ai result response is not valid JSON: <html>502 Bad Gateway</html>", True),
    "bad-shape": ("has a file without a valid url", True),
    "provider-error": ("failed: NSFW content detected", True),
}


@pytest.fixture
def model():
    # Own row: transactional tests flush the seeded catalog when they end.
    return AIModel.objects.update_or_create(
        pk="test/faults-fal-model",
        defaults={"display_name": "Faults", "kind": "image", "credits_cost": COST, "provider": "fal"},
    )[0]


def worker_env(fake_fal, tmp_path) -> dict:
    return manage_env(
        database_url(),
        GENERATION_PROVIDER="fal",
        FAL_KEY=FAL_KEY,
        FAL_QUEUE_URL=fake_fal.url,
        FAL_TIMEOUT=str(FAL_TIMEOUT),
        MEDIA_ROOT=str(tmp_path),
    )


def test_provider_failures_fail_and_refund_each_generation_once(fake_fal, fake_cdn, tmp_path, model):
    user = UserFactory()
    generations = {
        prompt: services.generation_create(user=user, ai_model=model, prompt=prompt)
        # The two slow ones (four attempts with backoff) first: one for each worker.
        for prompt in ["submit-500", "result-500", "flaky", *(p for p in FAILURES if not p.endswith("-500"))]
    }
    assert Profile.objects.get(pk=user.pk).credits_balance == 100 - COST * len(generations)

    # Two workers side by side (SKIP LOCKED shares the queue), so the retry backoffs overlap.
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--once", "--idle-sleep", "0.1"],
            cwd=ROOT,
            env=worker_env(fake_fal, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=60))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate(timeout=10)
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, out + err
        assert "provider crashed" not in err, err  # every fault is a ProviderError
        assert FAL_KEY not in out + err
    processed = [int(m) for out, _ in outputs for m in re.findall(r"worker stopped after (\d+) item", out)]
    assert sum(processed) == len(generations), outputs  # each generation ran once

    # A transient 503 on submit: resent (fal cannot have queued it), then completed.
    flaky = Generation.objects.get(pk=generations["flaky"].pk)
    (job,) = {r["request_id"] for r in fake_fal.of("flaky") if r["request_id"]}
    assert (flaky.status, flaky.error_message, flaky.provider_request_id) == ("completed", "", job)
    # … its image copied in from the provider's CDN (generations/outputs.py).
    (output,) = flaky.outputs
    assert output["path"] == f"generations/{flaky.user_id}/{flaky.pk}/0.png" and "url" not in output
    assert fake_cdn.requests.count(IMAGE_PATH) >= 1
    assert [r["code"] for r in fake_fal.of("flaky", "submit")] == [503, 200]
    assert sorted(CreditTransaction.objects.filter(generation=flaky).values_list("type", flat=True)) == ["usage"]

    for prompt, (message, knows_request) in FAILURES.items():
        generation = Generation.objects.get(pk=generations[prompt].pk)
        jobs = {r["request_id"] for r in fake_fal.of(prompt) if r["request_id"]}
        assert generation.status == "failed", (prompt, generation.status)
        assert message in generation.error_message, (prompt, generation.error_message)
        assert FAL_KEY not in generation.error_message
        assert generation.completed_at is not None and generation.outputs == []
        assert generation.provider_request_id == (jobs.pop() if knows_request else ""), prompt
        ledger = sorted(CreditTransaction.objects.filter(generation=generation).values_list("type", "amount"))
        assert ledger == [("refund", COST), ("usage", -COST)], (prompt, ledger)

    # Retried where it is safe (GENERATION_MAX_ATTEMPTS), never resubmitted once fal may
    # have queued the job.
    assert len(fake_fal.of("submit-500", "submit")) == 3
    assert len(fake_fal.of("result-500", "submit")) == 1 and 1 <= len(fake_fal.of("result-500", "result")) <= 4
    for prompt in ("hang", "malformed", "bad-shape", "provider-error", "no-request-id"):
        assert len(fake_fal.of(prompt, "submit")) == 1, prompt
    assert Profile.objects.get(pk=user.pk).credits_balance == 100 - COST  # only the completed one is paid


def test_a_provider_that_stops_answering_is_bounded_by_fal_timeout(fake_fal, tmp_path, model):
    """FAL_TIMEOUT is the whole job's budget ("FAL_TIMEOUT s after the start it gives
    up"): a status request that never gets an answer must not hold the worker (and the
    person's credits) for the HTTP read timeout times the retries."""
    user = UserFactory()
    generation = services.generation_create(user=user, ai_model=model, prompt="stall")
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--once", "--idle-sleep", "0.1"],
        cwd=ROOT,
        env=worker_env(fake_fal, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = worker.communicate(timeout=FAL_TIMEOUT + 10)  # start-up + the budget + slack
    except subprocess.TimeoutExpired:
        worker.kill()
        out, err = worker.communicate(timeout=10)
    elapsed = time.monotonic() - started

    generation.refresh_from_db()
    (job,) = {r["request_id"] for r in fake_fal.of("stall") if r["request_id"]}
    assert worker.returncode == 0, (
        f"the worker was still waiting on fal after {elapsed:.0f} s with FAL_TIMEOUT={FAL_TIMEOUT} "
        f"(generation {generation.status}); stdout: {out[-500:]} stderr: {err[-500:]}"
    )
    assert generation.status == "failed"
    assert "time" in generation.error_message.lower(), generation.error_message  # "timed out" / "ReadTimeout"
    assert generation.provider_request_id == job
    assert sorted(CreditTransaction.objects.filter(generation=generation).values_list("type", flat=True)) == [
        "refund",
        "usage",
    ]
    assert Profile.objects.get(pk=user.pk).credits_balance == 100
