"""The generation worker outlives its database: a restart, an outage, a dropped connection.

A real ``manage.py run_worker`` process (the local provider: no network) runs against a
throwaway embedded PostgreSQL in its own data folder under .data/ (not the test
server), migrated once for this module. Generations are created by a small helper
process through the services, as the API would.

* The database is stopped (with a generation being rendered), kept down ~2 s and
  started again: the same worker process reconnects with backoff (its output counts the
  attempts), records the result of the generation it was rendering (obtained while the
  database was down), and completes a generation created after the restart.
* The worker's backend is terminated (pg_terminate_backend) while it renders: the
  result is recorded and a later generation completes.
* SIGTERM stops a worker promptly while it is waiting for the database.

The worker runs with persistent connections (CONN_MAX_AGE=60, as in production): the
harder case for recovery. Every wait is bounded; servers and processes are stopped in
``finally`` and the data folder is deleted. Two in-process tests pin the recording of a
provider result down: retried with backoff while the database fails, given up (and
said so) once the worker is stopping.
"""

import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError

from generations import services
from generations.management.commands import run_worker
from generations.models import AIModel, Generation
from tests.factories import UserFactory
from tests.helpers import ROOT, wait_for
from velro import embedded_db

DB_NAME = "velro_worker_outage"
MODEL = "test/worker-outage"
APP_NAME = "velro-outage-worker"  # the worker's application_name in pg_stat_activity
DOWN_SECONDS = 2.0
# Four images this size take the local provider a few seconds to render: long enough to
# stop the database, or terminate the worker's backend, while it renders.
SLOW = {"width": 4096, "height": 4096, "num_images": 4}
MEDIUM = {"width": 3072, "height": 3072, "num_images": 4}
FAST = {"width": 256, "height": 256}

_START = (
    "import json, sys; from pathlib import Path; from velro import embedded_db; "
    "print(json.dumps(embedded_db.ensure_running(Path(sys.argv[1]), sys.argv[2])))"
)

# Reads one JSON request a line ({"prompt", "parameters"}), creates that generation
# through the services and answers {"id"} or {"error"}. It starts while the database is
# migrated (it touches nothing before the first request) and takes a new connection for
# each request, so it outlives the restarts too.
_CREATOR = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "velro.settings")
import django
django.setup()
from django.db import connection
from accounts.models import User
from generations import services
from generations.models import AIModel
print(json.dumps({"ready": True}), flush=True)
model = user = None
for line in sys.stdin:
    request = json.loads(line)
    try:
        if model is None:
            model, _ = AIModel.objects.update_or_create(
                pk=sys.argv[1],
                defaults={"display_name": "Outage", "kind": "image", "credits_cost": 1, "provider": "local"},
            )
            user, _ = User.objects.get_or_create(email=sys.argv[2])
        generation = services.generation_create(
            user=user, ai_model=model, prompt=request["prompt"], parameters=request["parameters"]
        )
        print(json.dumps({"id": str(generation.pk)}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": repr(exc)}), flush=True)
    finally:
        connection.close()
"""


class Database:
    """The throwaway embedded server: started, stopped, started again."""

    def __init__(self):
        self.data_dir = ROOT / ".data" / f"worker-outage-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.host = ""
        self.user = ""
        self.running = False

    def start(self):
        """In a fresh process: the wheel caches its server handle per process, so a
        restart from this one would reuse the stopped handle."""
        result = subprocess.run(
            [sys.executable, "-c", _START, str(self.data_dir), DB_NAME],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        params = json.loads(result.stdout.strip().splitlines()[-1])
        self.host, self.user = params["HOST"], params["USER"]
        self.running = True

    def stop(self):
        self.running = False
        assert embedded_db.stop(self.data_dir), "the throwaway database was not running"

    def ensure_running(self):
        """Started again if a failed test left it stopped (the next tests need it)."""
        if not self.running:
            self.start()

    def url(self, **options) -> str:
        query = "".join(f"&{key}={value}" for key, value in options.items())
        return f"postgres://{self.user}:@/{DB_NAME}?host={self.host}{query}"

    def env(self, tmp_path: Path, **extra) -> dict:
        return {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": self.url(),
            "GENERATION_PROVIDER": "local",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",  # the worker's output reaches its log file as it happens
            **extra,
        }

    def query(self, sql: str, params=()) -> list:
        with psycopg.connect(
            host=self.host, user=self.user, dbname=DB_NAME, autocommit=True, connect_timeout=5
        ) as conn:
            return conn.execute(sql, params).fetchall()

    def status(self, generation_id: str) -> str:
        return self.query("SELECT status FROM generations WHERE id = %s", [generation_id])[0][0]

    def worker_backends(self) -> list[int]:
        return [
            pid for (pid,) in self.query("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [APP_NAME])
        ]

    def close(self):
        embedded_db.stop(self.data_dir)
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Creator:
    """The helper process that creates generations in the throwaway database."""

    def __init__(self, db: Database, tmp_path: Path):
        self.log = tmp_path / "creator.log"
        with self.log.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CREATOR, MODEL, "outage@example.com"],
                cwd=ROOT,
                env=db.env(tmp_path),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    def wait_ready(self):
        assert self._reply(60) == {"ready": True}

    def _reply(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        assert line, f"the creator did not answer within {timeout} s: {self.log.read_text()[-2000:]}"
        return json.loads(line)

    def create(self, prompt: str, parameters: dict) -> str:
        self.process.stdin.write(json.dumps({"prompt": prompt, "parameters": parameters}) + "\n")
        self.process.stdin.flush()
        reply = self._reply(30)
        assert "id" in reply, reply
        return reply["id"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Worker:
    """``manage.py run_worker`` on the throwaway database, its output in files."""

    def __init__(self, db: Database, tmp_path: Path, name: str):
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        env = db.env(tmp_path, DATABASE_URL=db.url(application_name=APP_NAME), CONN_MAX_AGE="60")
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--idle-sleep", "0.1"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def assert_alive(self):
        assert self.process.poll() is None, f"the worker exited ({self.process.returncode}):\n{self.output()[-4000:]}"

    def stop(self) -> float:
        """SIGTERM; how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)
        return time.monotonic() - started

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def attempts(self) -> list[tuple[int, float]]:
        """(attempt, delay) of each "database unavailable" line."""
        found = re.findall(r"database unavailable \(attempt (\d+)\): .*?; retrying in ([\d.]+) s", self.output())
        return [(int(n), float(delay)) for n, delay in found]


@pytest.fixture(scope="module")
def outage_db(tmp_path_factory):
    """The throwaway database, migrated, with its creator process (``db.creator``)."""
    db = Database()
    creator = None
    try:
        db.start()
        creator = db.creator = Creator(db, tmp_path_factory.mktemp("creator"))
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env={**os.environ, "DEBUG": "1", "DATABASE_URL": db.url()},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        creator.wait_ready()
        yield db
    finally:
        if creator is not None:
            creator.close()
        db.close()


@pytest.fixture
def creator(outage_db):
    return outage_db.creator


def wait_status(db: Database, worker: Worker, generation_id: str, *statuses: str, timeout: float):
    def reached():
        worker.assert_alive()  # fail at once, with its output, if the worker died
        try:
            return db.status(generation_id) in statuses
        except psycopg.OperationalError:
            return False

    wait_for(reached, timeout=timeout, interval=0.05, what=f"generation {generation_id} to be {' or '.join(statuses)}")


def test_the_worker_reconnects_after_a_database_restart_and_keeps_working(outage_db, creator, tmp_path):
    db = outage_db
    worker = Worker(db, tmp_path, "restart")
    try:
        before = creator.create("before the restart", FAST)
        wait_status(db, worker, before, "completed", timeout=30)

        # Stop the database while the worker renders: its result comes while the database is down.
        in_flight = creator.create("in flight during the restart", SLOW)
        wait_status(db, worker, in_flight, "processing", "completed", timeout=15)  # (or done already)
        db.stop()
        time.sleep(DOWN_SECONDS)
        # Down for as long as it takes the worker to fail twice (it may still be rendering).
        wait_for(
            lambda: worker.assert_alive() or len(worker.attempts()) >= 2,
            timeout=30,
            what="the worker to report the outage twice",
        )
        db.start()

        after = creator.create("after the restart", FAST)
        wait_status(db, worker, after, "completed", timeout=40)  # the backoff may wait up to ~8 s here
        wait_status(db, worker, in_flight, "completed", timeout=10)  # the result got while down is kept
        assert worker.process.pid == worker.pid
        worker.assert_alive()

        output = worker.output()
        attempts = worker.attempts()
        assert attempts[0] == (1, 0.5), output
        # Exponential: each retry waits twice as long as the one before (reset after success).
        for (n, delay), (n_next, delay_next) in zip(attempts, attempts[1:], strict=False):
            assert n_next == 1 or (n_next == n + 1 and delay_next == min(2 * delay, 30.0)), output
        assert "database available again" in output, output

        assert worker.stop() < 10
        assert worker.process.returncode == 0, worker.output()
        assert "worker stopped after 3 item(s)" in worker.output()
    finally:
        worker.kill()
        db.ensure_running()


def test_the_worker_survives_its_backend_being_terminated(outage_db, creator, tmp_path):
    db = outage_db
    worker = Worker(db, tmp_path, "terminated")
    try:
        first = creator.create("before the termination", FAST)
        wait_status(db, worker, first, "completed", timeout=30)
        wait_for(db.worker_backends, timeout=10, what="the worker's persistent connection")

        # Terminated while it renders: the connection it records the result on is dead.
        rendering = creator.create("rendering during the termination", MEDIUM)
        wait_status(db, worker, rendering, "processing", "completed", timeout=15)  # (or done already)
        terminated = db.query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [APP_NAME],
        )[0][0]
        assert terminated >= 1
        wait_status(db, worker, rendering, "completed", timeout=30)

        # Terminated while idle: the next generation is claimed on a new connection.
        wait_for(db.worker_backends, timeout=10, what="the worker to reconnect")
        db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME])
        later = creator.create("after the termination", FAST)
        wait_status(db, worker, later, "completed", timeout=30)

        assert worker.process.pid == worker.pid
        worker.assert_alive()
        assert worker.stop() < 10
        assert worker.process.returncode == 0, worker.output()
        assert "worker stopped after 3 item(s)" in worker.output()
    finally:
        worker.kill()
        db.ensure_running()


def test_sigterm_stops_the_worker_promptly_while_it_waits_for_the_database(outage_db, tmp_path):
    db = outage_db
    worker = Worker(db, tmp_path, "sigterm")
    try:
        wait_for(db.worker_backends, timeout=30, what="the worker to connect")
        db.stop()
        # Attempt 4 waits 4 s: a SIGTERM now must not wait for it to end.
        wait_for(
            lambda: worker.assert_alive() or any(n >= 4 for n, _ in worker.attempts()),
            timeout=20,
            what="the worker's fourth attempt",
        )
        elapsed = worker.stop()
        db.start()
        assert elapsed < 2.0, f"SIGTERM took {elapsed:.1f} s\n{worker.output()}"
        assert worker.process.returncode == 0, worker.output()
        assert "worker stopped after 0 item(s)" in worker.output()
    finally:
        worker.kill()
        db.ensure_running()


# In process, on the test database: recording a provider's result.


@pytest.fixture
def pending(transactional_db):
    model, _ = AIModel.objects.update_or_create(
        pk="test/outage-record", defaults={"display_name": "R", "kind": "image", "credits_cost": 5, "provider": "local"}
    )
    return services.generation_create(user=UserFactory(), ai_model=model, prompt="kept", parameters=FAST)


def failing(real, failures: int):
    """``real`` after ``failures`` calls that raise as a lost connection does."""
    calls = []

    def call(**kwargs):
        calls.append(kwargs)
        if len(calls) <= failures:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    call.calls = calls
    return call


def test_a_result_is_recorded_once_the_database_answers_again(pending, monkeypatch):
    complete = failing(services.generation_complete, 3)
    monkeypatch.setattr(services, "generation_complete", complete)
    waits = []
    monkeypatch.setattr(run_worker.Command, "_wait", lambda self, seconds: waits.append(seconds))
    out, err = io.StringIO(), io.StringIO()

    call_command("run_worker", "--once", stdout=out, stderr=err)

    assert len(complete.calls) == 4
    assert waits == [0.5, 1.0, 2.0]  # exponential backoff between the attempts
    assert "database unavailable (attempt 3): server closed the connection unexpectedly; retrying in 2.0 s" in (
        err.getvalue()
    )
    assert "completed in" in out.getvalue()
    generation = Generation.objects.get(pk=pending.pk)
    assert generation.status == "completed" and len(generation.outputs) == 1


def test_a_stopping_worker_gives_up_recording_and_says_so(pending, monkeypatch):
    complete = failing(services.generation_complete, 1000)
    monkeypatch.setattr(services, "generation_complete", complete)
    claimed = services.generation_claim_next()
    out, err = io.StringIO(), io.StringIO()
    command = run_worker.Command(stdout=out, stderr=err)
    command.stopping = True  # SIGTERM arrived while the provider ran

    command.process(claimed)

    assert len(complete.calls) == 1  # no retries once stopping
    assert f"{claimed.pk}: result not recorded" in err.getvalue()
    assert Generation.objects.get(pk=pending.pk).status == "processing"  # the sweep fails and refunds it later
