"""The database restarted under load, with the app left running.

A throwaway embedded PostgreSQL (its own data folder under .data/, not the test
server) gets the migrations; the app runs against it as a real gunicorn server with
persistent connections. Two client threads keep reading and writing (health, the
generation list, project creates, generation creates and cancels, registrations) while
the database is stopped and started again:

* while it is down, every request is a 503 in the API's error shape — never a 500,
  never a hang (every request has a timeout);
* once it is back, the same app process serves again (no restart);
* nothing is half-written: each created project, generation and identity is complete,
  and the credit ledger agrees with every balance.

A second test restarts the database while the app is idle: a worker's persistent
connection (CONN_MAX_AGE) to the old server must not fail the first request after it.
Everything is bounded (a timeout on every request and wait) and stopped in ``finally``;
the data folder is deleted.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.helpers import ROOT, free_port, wait_for
from velro import embedded_db

DB_NAME = "velro_faults"
SCHNELL = "fal-ai/flux/schnell"  # seeded by the migrations, 10 credits
REQUEST_TIMEOUT = 5.0
DOWN_SECONDS = 2.0
TEST_BUDGET = 40.0  # seconds of load at most
CONN_MAX_AGE = "60"  # persistent connections: the harder case for recovery
APP_WORKERS = 2
PASSWORD = "velro-restart-Qz7!pW3x-orbit"

_START = (
    "import json, sys; from pathlib import Path; from velro import embedded_db; "
    "print(json.dumps(embedded_db.ensure_running(Path(sys.argv[1]), sys.argv[2])))"
)

OK = {
    "health": {200},
    "list": {200},
    "project": {201},
    "create": {201, 402},  # 402 once the credits are spent
    "cancel": {200},
    "register": {201, 429},  # 429: registration is rate limited per address
}


def start_db(data_dir: Path) -> dict:
    """Start the throwaway server (a fresh process: the wheel caches its handle per
    process, so a restart from this one would reuse the stopped handle)."""
    result = subprocess.run(
        [sys.executable, "-c", _START, str(data_dir), DB_NAME],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class Call:
    thread: str
    endpoint: str
    t0: float
    t1: float
    status: int | None = None
    body: object = None
    error: str = ""
    sent: dict = field(default_factory=dict)


class Driver(threading.Thread):
    """Keeps sending requests until told to stop; records every call."""

    def __init__(self, name: str, base: str, token: str, stop: threading.Event, deadline: float):
        super().__init__(name=name, daemon=True)
        self.base, self.token, self.stop, self.deadline = base, token, stop, deadline
        self.calls: list[Call] = []

    def call(self, client: httpx.Client, endpoint: str, method: str, path: str, json_body=None) -> Call:
        headers = {"Authorization": f"Bearer {self.token}"} if endpoint != "health" else {}
        call = Call(self.name, endpoint, time.monotonic(), 0.0, sent=json_body or {})
        try:
            response = client.request(method, path, json=json_body, headers=headers)
            call.status = response.status_code
            try:
                call.body = response.json()
            except ValueError:
                call.body = response.text[:300]
        except httpx.HTTPError as exc:  # a timeout or a dropped connection: the app hung or died
            call.error = f"{type(exc).__name__}: {exc}"
        call.t1 = time.monotonic()
        self.calls.append(call)
        return call

    def run(self):
        with httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT) as client:
            i = 0
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                i += 1
                self.step(client, i)
                time.sleep(0.01)

    def step(self, client, i):
        raise NotImplementedError


class Browser(Driver):
    def step(self, client, i):
        self.call(client, "health", "GET", "/api/v1/health")
        self.call(client, "list", "GET", "/api/v1/generations")
        self.call(client, "project", "POST", "/api/v1/projects", {"name": f"{self.name}-{i}"})


class Spender(Driver):
    def step(self, client, i):
        created = self.call(
            client, "create", "POST", "/api/v1/generations", {"ai_model": SCHNELL, "prompt": f"load {i}"}
        )
        if created.status == 201:
            self.call(client, "cancel", "POST", f"/api/v1/generations/{created.body['id']}/cancel")
        if i % 4 == 1:
            body = {"email": f"load-{i}-{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD}
            self.call(client, "register", "POST", "/api/v1/auth/register", body)


class App:
    """The throwaway database and the app server running against it."""

    def __init__(self, tmp_path: Path):
        self.data_dir = ROOT / ".data" / f"faults-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.log = tmp_path / "gunicorn.log"
        self.tmp_path = tmp_path
        self.params: dict = {}
        self.server: subprocess.Popen | None = None
        self.base = ""
        self.token = ""

    def start(self):
        self.params = start_db(self.data_dir)
        url = f"postgres://{self.params['USER']}:@/{DB_NAME}?host={self.params['HOST']}"
        env = {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": url,
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "MEDIA_ROOT": str(self.tmp_path / "media"),
            "LOG_LEVEL": "WARNING",
            "PASSWORD_BREACH_CHECK": "0",  # no internet: the bundled leaked-password list
            "RATE_LIMIT_REGISTER_IP": "1000/min",  # the spender registers from one address
        }
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        server_env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": str(APP_WORKERS),
            "GUNICORN_THREADS": "1",  # sync workers: one database connection each
            "GUNICORN_TIMEOUT": "20",
            "GUNICORN_GRACEFUL_TIMEOUT": "2",
        }
        with self.log.open("w") as out:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                cwd=ROOT,
                env=server_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.healthy, timeout=20, interval=0.1, what="the app to serve")
        registered = httpx.post(
            f"{self.base}/api/v1/auth/register",
            json={"email": "restart@example.com", "password": PASSWORD},
            timeout=REQUEST_TIMEOUT,
        )
        assert registered.status_code == 201, registered.text
        self.token = registered.json()["access"]

    def healthy(self) -> bool:
        self.assert_alive()
        try:
            return httpx.get(f"{self.base}/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def assert_alive(self):
        assert self.server is not None and self.server.poll() is None, "the app died: " + self.log.read_text()[-2000:]

    def get(self, path: str) -> httpx.Response:
        """A request on a new client connection."""
        return httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=5)

    def stop_db(self):
        assert embedded_db.stop(self.data_dir), "the throwaway database was not running"

    def start_db(self):
        start_db(self.data_dir)

    def app_connections(self) -> int:
        """How many connections the app holds to its database."""
        with self.connect() as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()",
                [DB_NAME],
            ).fetchone()[0]

    def connect(self):
        return psycopg.connect(host=self.params["HOST"], user=self.params["USER"], dbname=DB_NAME, autocommit=True)

    def close(self):
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=10)
        embedded_db.stop(self.data_dir)
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = App(tmp_path_factory.mktemp("faults-app"))
    try:
        app.start()
        yield app
    finally:
        app.close()


def test_the_app_answers_503_while_the_database_is_down_and_recovers_by_itself(app):
    load_deadline = time.monotonic() + TEST_BUDGET
    stop = threading.Event()
    drivers = [
        Browser("browser", app.base, app.token, stop, load_deadline),
        Spender("spender", app.base, app.token, stop, load_deadline),
    ]

    def calls():
        return [c for d in drivers for c in list(d.calls)]

    try:
        for driver in drivers:
            driver.start()
        wait_for(
            lambda: sum(c.status == 200 for c in calls()) >= 10,
            timeout=15,
            interval=0.1,
            what="traffic before the restart",
        )

        t_stopping = time.monotonic()
        app.stop_db()
        t_stopped = time.monotonic()
        time.sleep(DOWN_SECONDS)
        t_starting = time.monotonic()
        app.start_db()
        t_started = time.monotonic()

        def recovered():
            after = [c for c in calls() if c.t0 > t_started + 1]
            return all(sum(c.endpoint == e and c.status in OK[e] for c in after) >= 3 for e in ("health", "list"))

        wait_for(recovered, timeout=15, interval=0.1, what="the app to serve again after the restart")
    finally:
        stop.set()
        for driver in drivers:
            driver.join(timeout=REQUEST_TIMEOUT + 5)
    assert not any(d.is_alive() for d in drivers), "a client thread hung"
    app.assert_alive()
    records = calls()
    project_names, generation_ids, emails, problems = check_consistency(app)
    timeline = describe(records, t_stopping, t_stopped, t_starting, t_started)

    # Never a hang, a dropped connection or a 500; only the expected answers or a 503.
    assert not [c for c in records if c.error], timeline
    assert not [c for c in records if c.status not in OK[c.endpoint] | {503}], timeline

    before = [c for c in records if c.t1 < t_stopping]
    down = [c for c in records if c.t0 > t_stopped and c.t1 < t_starting]
    after = [c for c in records if c.t0 > t_started]
    assert before and all(c.status in OK[c.endpoint] for c in before), timeline

    # Down: 503 everywhere, in the API's error shape (the health check has its own body).
    for endpoint in ("health", "list", "project", "create"):
        assert len([c for c in down if c.endpoint == endpoint]) >= 2, f"too few {endpoint} calls while down\n{timeline}"
    for c in down:
        assert c.status == 503, timeline
        if c.endpoint == "health":
            assert c.body["database"] == "unreachable", c.body
        else:
            assert isinstance(c.body, dict) and {"detail", "code"} <= set(c.body), c.body
            assert isinstance(c.body["detail"], str) and c.body["detail"] and isinstance(c.body["code"], str)

    # Back up: the same app process serves every endpoint again, without a restart.
    for endpoint in ("health", "list", "project", "create"):
        answered = [c for c in after if c.endpoint == endpoint and c.status in OK[endpoint]]
        assert answered, f"no successful {endpoint} after the restart\n{timeline}"
    assert not [c for c in after if c.status == 503], f"503 after the database was back\n{timeline}"

    # Nothing half-written.
    assert problems == [], problems
    created_projects = {c.sent["name"] for c in records if c.endpoint == "project" and c.status == 201}
    assert project_names == created_projects
    created_generations = {c.body["id"] for c in records if c.endpoint == "create" and c.status == 201}
    assert generation_ids == created_generations
    registered_emails = {c.sent["email"] for c in records if c.endpoint == "register" and c.status == 201}
    assert emails == registered_emails | {"restart@example.com"}


def test_idle_persistent_connections_do_not_fail_requests_after_a_restart(app):
    """With CONN_MAX_AGE > 0 each app worker keeps its connection between requests. A
    worker that had no request while the database was down still holds a connection to
    the old server: once the database is back, requests must not fail on it."""
    # Every worker holds an open connection (each sync worker serves one request at a time).
    wait_for(
        lambda: app.get("/api/v1/generations").status_code == 200 and app.app_connections() >= APP_WORKERS,
        timeout=15,
        interval=0.1,
        what=f"{APP_WORKERS} persistent connections",
    )
    app.stop_db()
    app.start_db()  # a short outage with no traffic, as for most workers of a real fleet

    statuses = [app.get("/api/v1/generations").status_code for _ in range(2 * APP_WORKERS)]

    assert statuses == [200] * len(statuses), (
        f"requests after the database was back: {statuses}; a 503 here is a worker reusing its connection to "
        "the stopped server"
    )
    app.assert_alive()


def check_consistency(app: App):
    """(project names, generation ids, emails, a list of problems) from the database."""
    problems = []
    with app.connect() as conn:

        def rows(sql):
            return conn.execute(sql).fetchall()

        project_names = {name for (name,) in rows("SELECT name FROM projects")}
        generation_ids = {str(pk) for (pk,) in rows("SELECT id FROM generations")}
        emails = {email for (email,) in rows("SELECT email FROM auth.users")}
        checks = {
            "projects without an owner": """
                SELECT p.id FROM projects p LEFT JOIN auth.users u ON u.id = p.user_id
                LEFT JOIN public.users pr ON pr.id = p.user_id WHERE u.id IS NULL OR pr.id IS NULL""",
            "identities without a profile": """
                SELECT u.id FROM auth.users u LEFT JOIN public.users p ON p.id = u.id WHERE p.id IS NULL""",
            "profiles without an identity": """
                SELECT p.id FROM public.users p LEFT JOIN auth.users u ON u.id = p.id WHERE u.id IS NULL""",
            "people without exactly one sign-up bonus": """
                SELECT p.id FROM public.users p WHERE (SELECT count(*) FROM credit_transactions t
                WHERE t.user_id = p.id AND t.type = 'signup_bonus') <> 1""",
            "generations not charged exactly once": """
                SELECT g.id FROM generations g WHERE (SELECT count(*) FROM credit_transactions t
                WHERE t.generation_id = g.id AND t.type = 'usage') <> 1""",
            "refunds that do not match the status": """
                SELECT g.id, g.status FROM generations g WHERE (SELECT count(*) FROM credit_transactions t
                WHERE t.generation_id = g.id AND t.type = 'refund') <> (g.status = 'cancelled')::int""",
            "generations in an unexpected status": """
                SELECT id, status FROM generations WHERE status NOT IN ('pending', 'cancelled')""",
            "balances that disagree with the ledger": """
                SELECT p.id, p.credits_balance,
                       (SELECT coalesce(sum(amount), 0) FROM credit_transactions t WHERE t.user_id = p.id),
                       (SELECT balance_after FROM credit_transactions t WHERE t.user_id = p.id
                        ORDER BY created_at DESC, id DESC LIMIT 1)
                FROM public.users p""",
        }
        for name, sql in checks.items():
            found = rows(sql)
            if name == "balances that disagree with the ledger":
                found = [r for r in found if not (r[1] == r[2] == r[3])]
            if found:
                problems.append((name, found[:5]))
    return project_names, generation_ids, emails, problems


def describe(records: list[Call], t_stopping, t_stopped, t_starting, t_started) -> str:
    """The timeline of every call, relative to the stop, for failure messages."""
    lines = [
        f"db stop {0:.2f}..{t_stopped - t_stopping:.2f} s, start {t_starting - t_stopping:.2f}.."
        f"{t_started - t_stopping:.2f} s"
    ]
    for c in sorted(records, key=lambda c: c.t0):
        outcome = c.error or f"{c.status} {str(c.body)[:120]}"
        lines.append(f"{c.t0 - t_stopping:7.2f} {c.t1 - c.t0:5.2f}s {c.thread:8} {c.endpoint:8} {outcome}")
    return "\n".join(lines)
