"""/metrics under gunicorn, as production runs it: the totals of several worker processes
(and of a generation worker beside them, sharing the metrics folder) add up, whichever
process answers the scrape; and a database that cannot be reached is
``velro_database_up 0`` in a 200, not an error."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from accounts.models import User
from generations.models import AIModel, Generation
from generations.services import generation_create
from tests.helpers import ROOT, database_url, get, gunicorn
from tests.metrics.conftest import TOKEN, parse, value
from tests.velro.test_production import NO_SERVER_URL, prod_env

AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
    with gunicorn(env, tmp_path / "gunicorn.log") as port:
        assert not (folder / "stale").exists() and not (folder / "counter_999999.db").exists()
        # One worker takes a request whose headers are not finished and waits for the rest
        # (a sync worker serves one client at a time), so the other serves the next 39.
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"GET /api/v1/no-such-thing HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        statuses = [get(port, "/api/v1/no-such-thing")[0] for _ in range(39)]
        slow.sendall(b"Connection: close\r\n\r\n")
        assert slow.makefile("rb").readline().split()[1] == b"404"
        slow.close()
        assert statuses == [404] * 39
        requests = 40
        spread = per_process(folder, "velro_http_requests_total", '"api-not-found"')
        assert sorted(spread.values()) == [1, 39], spread  # two processes' files

        # The scrape, answered by one worker, adds up both files: 40.
        for _ in range(6):
            status, headers, body = get(port, "/metrics", AUTH)
            assert status == 200 and headers["content-type"].startswith("text/plain")
            samples = parse(body.decode())
            total = value(samples, "velro_http_requests_total", view="api-not-found", method="GET", status="404")
            assert total == requests
            assert value(samples, "velro_database_up") == 1

        # A generation rendered by `manage.py run_worker` (another process, same folder) is
        # exported by gunicorn's /metrics.
        # A model of its own: an earlier transactional test's flush may have emptied the catalog.
        model, _ = AIModel.objects.update_or_create(
            pk="test/metrics-model", defaults={"display_name": "Metrics", "kind": "image", "credits_cost": 10}
        )
        user = User.objects.create_user(email="metrics@example.com", password="x" * 20)
        generation_create(user=user, ai_model=model, prompt="a lighthouse")
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
        labels = {"model": "test/metrics-model"}
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


def test_recycled_workers_are_folded_into_the_archive_and_the_totals_stay(tmp_path):
    """GUNICORN_MAX_REQUESTS recycles workers: each exit folds the worker's files into
    the archives (gunicorn's child_exit), so the folder stays small and nothing is lost."""
    folder = tmp_path / "prometheus"
    env = metrics_env(
        NO_SERVER_URL, folder, WEB_CONCURRENCY="2", GUNICORN_MAX_REQUESTS="5", GUNICORN_MAX_REQUESTS_JITTER="0"
    )
    requests = 60
    with gunicorn(env, tmp_path / "gunicorn.log") as port:
        for _ in range(requests):
            assert get(port, "/no-such-page")[0] == 404  # no view, no database
        samples = parse(get(port, "/metrics", AUTH)[2].decode())
        labels = {"view": "none", "method": "GET", "status": "404"}
        assert value(samples, "velro_http_requests_total", **labels) == requests
        assert value(samples, "velro_http_request_duration_seconds_count", view="none") == requests
        assert (folder / "counter_archive.db").exists() and (folder / "histogram_archive.db").exists()
        # About 12 workers have come and gone: the live ones' files, and the archives.
        assert len(list(folder.glob("counter_*.db"))) <= 2 + 1 + 1, sorted(p.name for p in folder.iterdir())


def test_folding_a_dead_process_keeps_every_total(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.mmap_dict import mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    from velro.prometheus_files import fold_dead_process

    def key(status):
        return mmap_key("velro_http_requests", "velro_http_requests_total", ["status"], [status], "Requests.")

    for pid, counts in ((11, {"200": 3, "500": 1}), (12, {"200": 4}), ("archive", {"200": 10})):
        values = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        for status, count in counts.items():
            values.write_value(key(status), count, 0.0)
        values.close()

    def totals():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        return parse(generate_latest(registry).decode())

    before = totals()
    assert value(before, "velro_http_requests_total", status="200") == 17
    assert fold_dead_process(tmp_path, 11) == 1
    assert totals() == before
    assert not (tmp_path / "counter_11.db").exists() and (tmp_path / "counter_12.db").exists()
    assert fold_dead_process(tmp_path, 11) == 0  # nothing left of it: a second call changes nothing
    assert totals() == before
