"""A worker killed (SIGKILL) in the middle of a generation.

The worker is a real ``manage.py run_worker`` process on the test database, running the
fal provider against a fake queue that never finishes the job. Once the job is submitted
and being polled, the worker is killed: the row stays ``processing``. A new worker's sweep
(GENERATION_PROCESSING_TIMEOUT=0) fails it with a timeout error and refunds it exactly
once; nothing is charged twice, and the staff admin shows the run.
"""

import re
import signal
import subprocess
import sys

import pytest
from django.utils import formats, timezone

from accounts.models import Profile
from credits.models import CreditTransaction
from generations import services
from generations.models import AIModel, Generation
from tests.factories import UserFactory
from tests.faults.conftest import FAL_KEY
from tests.helpers import ROOT, database_url, manage_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def worker_env(fake_fal, tmp_path, **extra) -> dict:
    return manage_env(
        database_url(),
        GENERATION_PROVIDER="fal",
        FAL_KEY=FAL_KEY,
        FAL_QUEUE_URL=fake_fal.url,
        FAL_TIMEOUT="120",
        MEDIA_ROOT=str(tmp_path),
        **extra,
    )


def admin_field(content: str, name: str) -> str:
    """The value the admin's read-only change page shows for ``name``."""
    match = re.search(rf'field-{name}".*?<div class="readonly">(.*?)</div>', content, re.S)
    assert match, f"no {name} on the page"
    return match.group(1).strip()


def test_a_killed_worker_is_swept_failed_refunded_once_and_visible_in_the_admin(fake_fal, tmp_path, client):
    model, _ = AIModel.objects.update_or_create(
        pk="test/faults-killed-model",
        defaults={"display_name": "Killed", "kind": "image", "credits_cost": 40, "provider": "fal"},
    )
    user = UserFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    generation = services.generation_create(user=user, ai_model=model, prompt="hang")
    assert Profile.objects.get(pk=user.pk).credits_balance == 60

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--idle-sleep", "0.1"],
        cwd=ROOT,
        env=worker_env(fake_fal, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Mid-generation: claimed, submitted to fal, and fal says it is still running.
        wait_for(lambda: fake_fal.of("hang", "status"), timeout=30, what="the worker to poll the hanging job")
        assert Generation.objects.get(pk=generation.pk).status == "processing"
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate(timeout=10)
    assert worker.returncode == -signal.SIGKILL

    killed = Generation.objects.get(pk=generation.pk)
    assert (killed.status, killed.attempts, killed.completed_at) == ("processing", 1, None)
    assert killed.started_at is not None
    assert len(fake_fal.of("hang", "submit")) == 1

    # A new worker: its first sweep finds the row stuck past the (zero) timeout.
    sweeper = subprocess.run(
        [sys.executable, "manage.py", "run_worker", "--once", "--sweep-every", "0", "--idle-sleep", "0.1"],
        cwd=ROOT,
        env=worker_env(fake_fal, tmp_path, GENERATION_PROCESSING_TIMEOUT="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sweeper.returncode == 0, sweeper.stdout + sweeper.stderr
    assert "sweep: failed and refunded 1 stuck generation(s)" in sweeper.stdout, sweeper.stdout
    assert "worker stopped after 0 item(s)" in sweeper.stdout  # nothing was re-run

    swept = Generation.objects.get(pk=generation.pk)
    assert swept.status == "failed"
    # Cancelled at fal first (which would not: it runs), then failed.
    error = "Timed out: still processing after 0 s (worker lost); fal answered IN_PROGRESS to cancel."
    assert swept.error_message == error
    assert len(fake_fal.of("hang", "cancel")) == 1
    assert swept.attempts == 1 and swept.started_at == killed.started_at
    assert swept.completed_at is not None and swept.completed_at >= swept.started_at
    assert len(fake_fal.of("hang", "submit")) == 1  # never resubmitted

    # Exactly once, however often the sweep runs again.
    assert services.generation_sweep(timeout_seconds=0) == 0
    ledger = CreditTransaction.objects.filter(generation=generation)
    assert sorted(ledger.values_list("type", "amount")) == [("refund", 40), ("usage", -40)]
    assert Profile.objects.get(pk=user.pk).credits_balance == 100

    # The run is visible in the admin: attempts, start time and the error.
    client.force_login(staff)
    page = client.get(f"/admin/generations/generation/{generation.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert admin_field(content, "status") == "Failed"
    assert admin_field(content, "attempts") == "1"
    assert admin_field(content, "started_at") == formats.date_format(
        timezone.localtime(swept.started_at), "DATETIME_FORMAT"
    )
    assert admin_field(content, "error_message") == error
    assert admin_field(content, "completed_at") not in ("", "-")
    assert "Refund: generation failed" in content  # the ledger inline shows the refund
