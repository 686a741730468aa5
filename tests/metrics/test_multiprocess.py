"""/metrics under gunicorn, as production runs it: the totals of several worker processes
(and of a generation worker beside them, sharing the metrics folder) add up, whichever
process answers the scrape; and a database that cannot be reached is
``velro_database_up 0`` in a 200, not an error."""

import contextlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from accounts.models import User
from generations.models import AIModel, Generation
from generations.services import generation_create
from tests.helpers import ROOT, database_url
from tests.metrics.conftest import TOKEN, parse, value
from tests.velro.test_production import NO_SERVER_URL, free_port, get, prod_env, wait_for_port

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.contextmanager
def gunicorn(env: dict, log: Path):
    port = free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "GUNICORN_GRACEFUL_TIMEOUT": "5"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "velro.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(proc, port, time.monotonic() + 60)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def metrics_env(url: str, folder: Path, **extra) -> dict:
    return prod_env(
        url,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        **extra,
    )


def per_process(folder: Path, sample: str, labels: str) -> dict[str, float]:
    """Each process's own value of one counter sample, from its file in the folder."""
    found = {}
    for path in folder.glob("counter_*.db"):
        for key, number, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
            if sample in key and labels in key:
                found[path.name] = found.get(path.name, 0) + number
    return found


@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_workers_and_a_generation_worker_add_up(tmp_path):
    folder = tmp_path / "prometheus"
    (folder / "stale").mkdir(parents=True)
    (folder / "counter_999999.db").write_bytes(b"left by a previous run")  # emptied at start
    env = metrics_env(database_url(), folder, WEB_CONCURRENCY="2", MEDIA_ROOT=str(tmp_path / "media"))
    requests = 40
    with gunicorn(env, tmp_path / "gunicorn.log") as port:
        assert not (folder / "stale").exists() and not (folder / "counter_999999.db").exists()
        # Eight at a time: a sync worker busy with one makes the other accept the next.
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: get(port, "/api/v1/no-such-thing")[0], range(requests)))
        assert statuses == [404] * requests
        spread = per_process(folder, "velro_http_requests_total", '"api-not-found"')
        assert len(spread) == 2 and sum(spread.values()) == requests, spread

        # Whichever worker answers, the scrape has the total of both.
        for _ in range(6):
            status, headers, body = get(port, "/metrics", AUTH)
            assert status == 200 and headers["content-type"].startswith("text/plain")
            samples = parse(body.decode())
            total = value(samples, "velro_http_requests_total", view="api-not-found", method="GET", status="404")
            assert total == requests
            assert value(samples, "velro_database_up") == 1

        # A generation rendered by `manage.py run_worker` (another process, same folder) is
        # exported by gunicorn's /metrics.
        user = User.objects.create_user(email="metrics@example.com", password="x" * 20)
        generation_create(user=user, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="a lighthouse")
        worker = subprocess.run(
            [sys.executable, "manage.py", "run_worker", "--once", "--idle-sleep", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stdout + worker.stderr
        assert Generation.objects.get(user=user).status == "completed"
        samples = parse(get(port, "/metrics", AUTH)[2].decode())
        labels = {"model": "fal-ai/flux/dev"}
        assert value(samples, "velro_generations_finished_total", status="completed", **labels) == 1
        assert value(samples, "velro_generations_created_total", **labels) is None  # created here, in pytest


def test_an_unreachable_database_is_up_0_and_still_a_200(tmp_path):
    env = metrics_env(NO_SERVER_URL, tmp_path / "prometheus", WEB_CONCURRENCY="1")
    with gunicorn(env, tmp_path / "gunicorn.log") as port:
        status, _headers, body = get(port, "/metrics", AUTH)
        assert status == 200, body
        samples = parse(body.decode())
        assert value(samples, "velro_database_up") == 0
        assert value(samples, "velro_generation_oldest_pending_age_seconds") is None  # absent, not 0
        assert get(port, "/metrics")[0] == 401  # and still closed
