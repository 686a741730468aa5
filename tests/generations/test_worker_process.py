"""The worker as a real process: it processes the queue and stops cleanly on SIGTERM."""

import signal
import subprocess
import sys
import time

import pytest

from generations import services
from generations.models import AIModel, Generation
from tests.factories import UserFactory
from tests.helpers import ROOT, database_url, manage_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_stops_the_worker_after_its_work(tmp_path):
    model, _ = AIModel.objects.update_or_create(
        pk="test/worker-model", defaults={"display_name": "W", "kind": "image", "credits_cost": 5, "provider": "local"}
    )
    user = UserFactory()
    generation = services.generation_create(
        user=user, ai_model=model, prompt="a process", parameters={"width": 256, "height": 256}
    )
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--idle-sleep", "0.1"],
        cwd=ROOT,
        env=manage_env(database_url(), MEDIA_ROOT=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Generation.objects.get(pk=generation.pk).status != "completed":
            time.sleep(0.2)
        assert Generation.objects.get(pk=generation.pk).status == "completed"
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "completed in" in out
    assert "worker stopped after 1 item(s)" in out
    assert (tmp_path / "generations" / str(generation.user_id) / str(generation.pk) / "0.png").exists()
