"""``manage.py bench`` (``make bench``): load data, serve the app, measure, report.

One run:

1. **Data.** Two benchmark databases on the configured server, ``<name>_bench_10k`` and
   ``<name>_bench_1m`` (``…_bench_smoke_*`` with ``--smoke``), migrated like production
   and filled by bench/datasets.py with set-based SQL. A database whose marker says
   it holds the data set is reused.
2. **Probes, in this process.** Through Django's test client on each benchmark database:
   SQL statements per request at three page sizes, the cursor of a page deep in a heavy
   user's history, ``EXPLAIN (ANALYZE, BUFFERS)`` of the page queries Django ran (under
   the same role and claims), and which index explore used.
3. **Load.** gunicorn with the production settings (``velro.wsgi``), the same app with the
   RLS role switch disabled (a bench-only setting), the app on the small data set, and
   the baseline (bench/baseline.py: psycopg only, same SQL, same role and claims,
   same JSON) — each driven by locust in headless mode over loopback for a bounded time
   and number of requests.
   Then, on the same servers: the heavy people's API (the whale's 100k rows against a
   heavy person's 10k, endpoint by endpoint: stats, the list filtered at values with few
   matches, the ledger), the admin as a staff member (bench/staff.py: every page on the
   10k and the 1M servers, alternating), and POST generations through the app and through
   the baseline's call of the same ``generation_create``, alternating rounds.
4. **Checks and report.** The credit invariant for every person after the POST runs; a
   table of every target with its measured value and PASS/FAIL; ``bench/results.json``.
   Every speed target is a ratio or a growth factor of two sides measured in this run,
   alternating, or a latency bound of a single page or endpoint; see the constants below
   for the goals and the noise floors of the growth factors.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from bench import datasets, staff
from velro import jwt_keys

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
TX_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "ROLLBACK TO")


@dataclass(frozen=True)
class Profile:
    """How much load: the full benchmark, or the smoke run CI uses so it cannot rot."""

    small: str
    large: str
    deep_rows: int  # the "deep" page starts after this many rows of a heavy user
    warmup_s: float
    throughput_s: float
    latency_s: float
    post_s: float
    max_requests: int
    get_clients: int
    post_clients: int
    explore_clients: int
    heavy_s: float  # per endpoint of the heavy people's API, each side (in 3 alternating rounds)
    admin_min: int  # requests per admin page and side: at least this many …
    admin_max: int  # … and at most this many,
    admin_budget_s: float  # stopping after this long once admin_min are in


FULL = Profile("10k", "1m", 4_000, 2, 12, 8, 20, 60_000, 16, 32, 4, 3, 3, 10, 4)
SMOKE = Profile("smoke-small", "smoke-large", 250, 0.5, 2, 1.5, 3, 2_000, 4, 8, 2, 1.5, 1, 2, 0.2)

# Speed goals of the heavy people's API and of the admin (issue 20). A growth factor is
# the ratio of the two p95s with each side floored at the *_FLOOR_MS: below that, a p95 on
# this shared 2-core machine is scheduling noise, not work that grows with the data (the
# measured ratio is shown as it is).
HEAVY_P95_MS = 50.0
HEAVY_GROWTH = 2.0
HEAVY_FLOOR_MS = 10.0
ADMIN_P95_MS = 1000.0
ADMIN_GROWTH = 2.0
ADMIN_FLOOR_MS = 50.0
GET_RATIO = 0.60
# POST generations through the app ÷ the baseline's bare call of the same generation_create,
# same 32 clients, alternating rounds. Measured 0.44 (app 109/s, baseline 250/s) on the
# 2-core machine under other work, 0.35–0.41 in smoke runs: per request the app also
# verifies the token and reads the caller with the session check, parses and validates the
# input with DRF, checks the parameters against the model's schema and renders the
# serializer, where the baseline only decodes the token and calls the function. The goal
# keeps today's level with room for the noise of a shared machine, so a change that adds
# per-request work on the hottest write shows; raise it when that work is cut (issue 20's
# GET profiling touches the same request path).
POST_RATIO = 0.40


@dataclass
class Run:
    """One locust run against one server."""

    name: str
    clients: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50: float
    p95: float
    p99: float
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        data = asdict(self)
        data.pop("latencies")
        return data


@dataclass
class Target:
    key: str
    label: str
    goal: str
    measured: str
    passed: bool
    enforced: bool = True
    detail: str = ""


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def combine(name: str, runs: list[Run]) -> Run:
    latencies = [x for run in runs for x in run.latencies]
    requests = sum(run.requests for run in runs)
    seconds = sum(run.seconds for run in runs)
    return Run(
        name,
        runs[0].clients,
        requests,
        sum(run.errors for run in runs),
        seconds,
        requests / seconds if seconds else 0.0,
        percentile(latencies, 50),
        percentile(latencies, 95),
        percentile(latencies, 99),
        [e for run in runs for e in run.error_samples][:10],
        latencies,
    )


# --- databases ------------------------------------------------------------------------


def connection_kwargs(dbname: str) -> dict:
    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("server_side_binding", None)
    params["dbname"] = dbname
    return params


def child_database_env(dbname: str) -> dict[str, str]:
    """DATABASE_URL (and PGHOST for a Unix socket) for a child process on ``dbname``."""
    s = connection.settings_dict
    user = quote(s.get("USER") or "", safe="")
    password = quote(str(s.get("PASSWORD") or ""), safe="")
    host, port = s.get("HOST") or "", str(s.get("PORT") or "")
    env = {}
    if host.startswith("/"):
        env["PGHOST"] = host  # Django leaves host empty, libpq takes PGHOST
        if port:
            env["PGPORT"] = port
        location = ""
    else:
        location = host + (f":{port}" if port else "")
    credentials = user + (f":{password}" if password else "")
    env["DATABASE_URL"] = f"postgres://{credentials}@{location}/{dbname}"
    sslmode = (s.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["DATABASE_URL"] += f"?sslmode={sslmode}"
    return env


def migrate_database(dbname: str) -> None:
    """``manage.py migrate`` of ``dbname`` in a child process, as production migrates."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=settings.BASE_DIR,
        env={**os.environ, **child_database_env(dbname), "DEBUG": "1"},
        check=True,
    )


def drop_database(dbname: str, *, via: str) -> None:
    """``DROP DATABASE IF EXISTS dbname WITH (FORCE)`` (its connections cut), issued
    through database ``via`` (the configured one: not the one dropped)."""
    with psycopg.connect(**connection_kwargs(via), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(dbname)))


@contextlib.contextmanager
def on_database(dbname: str):
    """Point this process's default connection at ``dbname`` for the block."""
    from django.contrib.contenttypes.models import ContentType

    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = dbname
    ContentType.objects.clear_cache()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        ContentType.objects.clear_cache()


def first_difference(a, b, path: str = "") -> str:
    """Where two JSON values first differ, for the report."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, ...) != b.get(key, ...):
                return first_difference(a.get(key, "<missing>"), b.get(key, "<missing>"), f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path or '<root>'}: app {str(a)[:80]!r} ≠ baseline {str(b)[:80]!r}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- servers --------------------------------------------------------------------------


class Server:
    """gunicorn (gunicorn.conf.py: the production configuration) serving ``app``."""

    def __init__(self, name: str, app: str, env: dict[str, str], log_dir: Path, ready_path: str, ready_status: int):
        self.name, self.app, self.env = name, app, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.ready_path, self.ready_status = ready_path, ready_status
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, **self.env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        # A metrics folder of its own (gunicorn.conf.py empties it at start): servers
        # started side by side must not empty each other's, nor a `make run`'s.
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.log_path.with_suffix(".prometheus"))
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(settings.BASE_DIR / "gunicorn.conf.py"), self.app],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                time.sleep(0.2)
                continue
            if status == self.ready_status and len(self.worker_pids()) >= self.expected_workers():
                return
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace").splitlines()[-5:]
        message = f"{self.name} did not become ready in {timeout:.0f} s; {self.log_path} ends:\n"
        raise RuntimeError(message + "\n".join(tail))

    def expected_workers(self) -> int:
        return int(self.env.get("WEB_CONCURRENCY") or 0) or min(2 * os.cpu_count() + 1, 12)

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def peak_worker_rss_mb(self) -> float:
        """The largest peak resident set (VmHWM) among the workers, in MiB."""
        peak = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        return peak / 1024

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


# --- the benchmark --------------------------------------------------------------------


class Bench:
    def __init__(self, *, smoke: bool, output: Path, keep_data: bool, out, style):
        self.profile = SMOKE if smoke else FULL
        self.smoke = smoke
        self.output = output
        self.keep_data = keep_data
        self.out, self.style = out, style
        self.base_name = connection.settings_dict["NAME"]
        suffix = {"10k": "10k", "1m": "1m", "smoke-small": "smoke_small", "smoke-large": "smoke_large"}
        # Smoke runs (the tests) get names of their own: two test runs may share a server.
        unique = f"_{os.getpid()}" if smoke else ""
        self.db = {
            key: f"{self.base_name}_bench_{suffix[spec]}{unique}"
            for key, spec in (("small", self.profile.small), ("large", self.profile.large))
        }
        self.spec = {"small": datasets.SPECS[self.profile.small], "large": datasets.SPECS[self.profile.large]}
        self.workdir = Path(tempfile.mkdtemp(prefix="velro-bench-"))
        self.runs: dict[str, Run] = {}
        self.probe: dict[str, dict] = {}
        self.servers: dict[str, Server] = {}
        self.heavy: list[dict] = []  # the heavy people's API endpoints (heavy_endpoints)
        self.admin: dict[str, dict[str, staff.PageTiming]] = {}  # admin page key → side → timings
        self.admin_pages_by_key: dict[str, dict[str, staff.Page]] = {}
        self.started = time.monotonic()

    # -- output

    def say(self, message: str) -> None:
        self.out.write(f"[{time.monotonic() - self.started:6.1f} s] {message}")
        self.out.flush()

    # -- 1. data

    def prepare(self, key: str) -> None:
        name, spec = self.db[key], self.spec[key]
        admin = connection_kwargs(self.base_name)
        with psycopg.connect(**admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            with psycopg.connect(**connection_kwargs(name)) as conn:
                loaded = datasets.is_loaded(conn, spec)
            if loaded:
                self.say(f"{name}: data set {spec.name} present, reused; applying any new migrations")
                migrate_database(name)
                return
            self.say(f"{name}: incomplete or older data set, recreating")
            drop_database(name, via=self.base_name)
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        self.say(f"{name}: created, migrating")
        migrate_database(name)
        self.say(f"{name}: loading data set {spec.name}")
        t0 = time.monotonic()
        with psycopg.connect(**connection_kwargs(name)) as conn:
            datasets.load(conn, spec, progress=lambda line: self.say(f"  {line}"))
        self.say(f"{name}: loaded in {time.monotonic() - t0:.1f} s")

    # -- tokens

    def token(self, user_id, email: str) -> str:
        """An access token of a live session of that person: the session row is made in
        each benchmark database that has them (the API checks it on every request)."""
        from django.utils import timezone

        from accounts.models import Session, User
        from accounts.sessions import access_token_for

        session = Session(id=uuid.uuid4(), user_id=user_id, created_at=timezone.now(), aal="aal1", method="password")
        for dbname in self.db.values():
            with psycopg.connect(**connection_kwargs(dbname)) as conn:
                conn.execute(
                    "INSERT INTO auth.sessions (id, user_id) SELECT %s, id FROM auth.users WHERE id = %s",
                    [session.id, user_id],
                )
        return access_token_for(User(id=user_id, email=email), session)[0]

    def people(self, key: str, emails: list[str]) -> list[tuple]:
        with psycopg.connect(**connection_kwargs(self.db[key])) as conn:
            rows = conn.execute("SELECT id, email FROM auth.users WHERE email = ANY(%s)", [emails]).fetchall()
        order = {email: i for i, email in enumerate(emails)}
        return sorted(rows, key=lambda row: order[row[1]])

    # -- 2. probes

    def probe_database(self, key: str) -> dict:
        from generations.models import AIModel

        spec = self.spec[key]
        heavy = self.people(key, datasets.heavy_user_emails(spec))
        user_id, email = heavy[0]
        result: dict = {"heavy_users": [[str(i), e] for i, e in heavy]}
        with on_database(self.db[key]), override_settings(ALLOWED_HOSTS=["*"]):
            client = Client(HTTP_AUTHORIZATION=f"Bearer {self.token(user_id, email)}", HTTP_HOST="127.0.0.1")

            def statements(path: str) -> tuple[list[str], dict]:
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"probe {path}: {response.status_code} {response.content[:300]!r}")
                sql = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(TX_STATEMENTS)]
                return sql, response.json()

            result["queries"] = {}
            for size in (10, 50, 100):
                sql, body = statements(f"/api/v1/generations?page_size={size}")
                result["queries"][str(size)] = len(sql)
                if size == 50:
                    result["first_page_sql"] = next(s for s in sql if 'FROM "generations"' in s)
                    result["first_page_ids"] = [row["id"] for row in body["results"]]

            # Walk the cursor to the deep page, as a client would.
            path, seen = "/api/v1/generations", 0
            while seen < self.profile.deep_rows:
                _, body = statements(path)
                seen += len(body["results"])
                parts = urlsplit(body["next"])
                path = f"{parts.path}?{parts.query}"
            deep_sql, _ = statements(path)
            result["deep_path"] = path
            result["deep_sql"] = next(s for s in deep_sql if 'FROM "generations"' in s)

            # The plans, under the same role and claims as the request.
            claims = json.dumps({"sub": str(user_id), "role": "authenticated", "email": email, "aud": "authenticated"})
            from velro.rls import transaction_role

            result["plans"] = {}
            for name in ("first_page_sql", "deep_sql"):
                with transaction.atomic(), transaction_role("authenticated", claims) as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + result[name])
                    result["plans"][name] = "\n".join(row[0] for row in cursor.fetchall())

            if key == "large":
                result["explore"] = self.probe_explore(client)
                result["session_check"] = self.probe_session_check(user_id)
            model = AIModel.objects.filter(is_active=True, kind="image").order_by("credits_cost", "id").first()
            result["post_model"] = model.pk
            result["scale"] = self.probe_scale(key)
        return result

    def probe_scale(self, key: str) -> dict:
        """For the heavy people's API and the admin (on the current connection, the
        benchmark database ``key``): the whale and the first heavy person, the values of
        their list filters that match few rows, and the rows whose admin pages are opened."""
        spec = self.spec[key]
        whale = self.people(key, [datasets.whale_email(spec)])[0]
        heavy = self.people(key, datasets.heavy_user_emails(spec)[:1])[0]
        since = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")  # ~1 % of a year
        people = {}
        with connection.cursor() as cursor:
            for name, (user_id, email) in (("whale", whale), ("heavy", heavy)):
                cursor.execute(
                    "SELECT id FROM public.projects WHERE user_id = %s ORDER BY generation_count, id LIMIT 1",
                    [user_id],
                )
                (project,) = cursor.fetchone()
                cursor.execute(
                    "SELECT ai_model_id, count(*) FROM public.generations WHERE user_id = %s"
                    " GROUP BY 1 ORDER BY 2, 1 LIMIT 1",
                    [user_id],
                )
                model, model_rows = cursor.fetchone()
                cursor.execute(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE is_favorite),"
                    " count(*) FILTER (WHERE project_id = %s), count(*) FILTER (WHERE created_at >= %s),"
                    " (SELECT count(*) FROM public.credit_transactions WHERE user_id = %s)"
                    " FROM public.generations WHERE user_id = %s",
                    [project, since, user_id, user_id],
                )
                total, failed, favourites, in_project, recent, ledger = cursor.fetchone()
                people[name] = {
                    "user": [str(user_id), email],
                    "generations": total,
                    "ledger_rows": ledger,
                    "filters": {
                        "status=failed": {"query": "status=failed", "rows": failed},
                        "project": {"query": f"project={project}", "rows": in_project},
                        "ai_model": {"query": f"ai_model={quote(model, safe='')}", "rows": model_rows},
                        "is_favorite": {"query": "is_favorite=true", "rows": favourites},
                        "created_after": {"query": f"created_after={since}", "rows": recent},
                    },
                }
            cursor.execute(
                "SELECT id FROM public.generations WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT 1",
                [whale[0]],
            )
            (generation,) = cursor.fetchone()
            cursor.execute(
                "SELECT id FROM public.projects WHERE user_id = %s ORDER BY generation_count DESC, id LIMIT 1",
                [whale[0]],
            )
            (project,) = cursor.fetchone()
            cursor.execute(
                "SELECT id FROM public.style_stacks WHERE visibility = 'public' ORDER BY usage_count DESC, id LIMIT 1"
            )
            (stack,) = cursor.fetchone()
        return {
            "people": people,
            "admin_rows": {"whale": str(whale[0]), "generation": str(generation), "project": str(project),
                           "stack": str(stack)},
        }  # fmt: skip

    def probe_session_check(self, user_id, rounds: int = 2000) -> dict:
        """What checking the access token's session costs on every request: the caller's
        read (accounts.authentication._READ_AND_SWITCH, with its join of auth.sessions by
        primary key) against the same read without the join (the statement before
        sessions existed), each run ``rounds`` times on one connection, median µs; and the
        join's plan."""
        import time

        from accounts.authentication import _READ_AND_SWITCH
        from velro.rls import _RESET

        without = (
            _READ_AND_SWITCH.replace("       s.id IS NOT NULL AS velro_session_live,\n", "")
            .replace(" AND s.id IS NOT NULL THEN", " THEN")
            .replace("LEFT JOIN auth.sessions AS s ON s.id = %s AND s.user_id = u.id\n", "")
        )
        session_id = uuid.uuid4()
        timings: dict[str, list[float]] = {"with": [], "without": []}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO auth.sessions (id, user_id) VALUES (%s, %s)", [session_id, user_id])
            statements = {
                "with": (_READ_AND_SWITCH, ["{}", session_id, user_id]),
                "without": (without, ["{}", user_id]),
            }
            for _ in range(rounds):
                for name, (sql, params) in statements.items():
                    started = time.perf_counter()
                    cursor.execute(sql, params)
                    cursor.fetchall()
                    timings[name].append((time.perf_counter() - started) * 1e6)
                    cursor.execute(_RESET)  # back to the owner, as at the end of a request
            cursor.execute("EXPLAIN " + _READ_AND_SWITCH, ["{}", session_id, user_id])
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        return {
            "with_us": percentile(timings["with"], 50),
            "without_us": percentile(timings["without"], 50),
            "rounds": rounds,
            "plan": plan,
        }

    def probe_explore(self, client) -> dict:
        """Which indexes explore used, counted by PostgreSQL itself: the full-text GIN index
        during the real request, and no sequential scan by the search function (called as
        the endpoint calls it; the page's rows are then fetched by id, which on a tiny
        smoke table the planner rightly does with a sequential scan)."""
        query = explore_word()
        counters = (
            "SELECT pg_stat_get_xact_numscans('public.style_stacks_search_gin'::regclass), "
            "pg_stat_get_xact_numscans('public.style_stacks'::regclass)"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(counters)
            index_before, _ = cursor.fetchone()
            response = client.get(f"/api/v1/style-stacks/explore?q={query}")
            cursor.execute(counters)
            index_after, seq_before = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM public.style_stacks_explore(%s, NULL, NULL, 'usage', 50, 0)", [query])
            cursor.execute(counters)
            _, seq_after = cursor.fetchone()
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT s.id, count(*) OVER () FROM public.style_stacks AS s "
                "WHERE s.visibility = 'public' AND s.search_vector @@ websearch_to_tsquery('english', %s) "
                "ORDER BY s.is_featured DESC, s.usage_count DESC, s.created_at DESC, s.id DESC LIMIT 50",
                [query],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        body = response.json()
        return {
            "q": query,
            "status": response.status_code,
            "count": body.get("count"),
            "index_scans": index_after - index_before,
            "seq_scans": seq_after - seq_before,
            "plan": plan,
        }

    def staff_setup(self, secret_key: str) -> tuple[dict[str, str], dict[str, dict]]:
        """The staff member's session cookie and the admin pages (bench/staff.py), per
        benchmark database."""
        from django.conf import settings as django_settings

        cookies, pages = {}, {}
        for key in ("small", "large"):
            with on_database(self.db[key]):
                session_key = staff.ensure_staff(secret_key)
                cookies[key] = f"{django_settings.SESSION_COOKIE_NAME}={session_key}"
                pages[key] = {page.key: page for page in self.admin_pages(key)}
        return cookies, pages

    def admin_pages(self, key: str) -> list[staff.Page]:
        """Every admin page measured, with this database's ids (see bench/staff.py)."""
        from django.contrib import admin
        from django.urls import reverse

        from accounts.models import User

        rows = self.probe[key]["scale"]["admin_rows"]
        whale_email = datasets.whale_email(self.spec[key])
        request = staff.staff_request(User.objects.get(email=staff.STAFF_EMAIL))
        pages = [staff.Page("dashboard", "index (dashboard)", reverse("admin:index"))]
        changelists = {}
        for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
            if not model_admin.has_view_or_change_permission(request):
                continue  # hidden registrations (staffauth's) have no pages
            meta = model._meta
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
            changelists[meta.label_lower] = url
            pages.append(staff.Page(f"list_{meta.app_label}_{meta.model_name}", f"list {meta.label_lower}", url))
        generations = changelists["generations.generation"]
        ledger = changelists["credits.credittransaction"]
        people = changelists["accounts.user"]
        pages += [
            staff.Page("search_generations_prompt", "search generations: a prompt word", f"{generations}?q=lighthouse"),
            staff.Page("search_generations_email", "search generations: owner's email",
                       f"{generations}?q={quote(whale_email)}"),
            staff.Page("search_users_prefix", "search people: email prefix", f"{people}?q=bench-user-0042"),
            staff.Page("search_ledger_email", "search ledger: email", f"{ledger}?q={quote(whale_email)}"),
            staff.Page("filter_generations_failed", "filter generations: failed",
                       f"{generations}?status__exact=failed"),
            staff.Page("filter_ledger_grant", "filter ledger: grants", f"{ledger}?type__exact=grant"),
            staff.Page("change_user_whale", "change page: the whale",
                       reverse("admin:accounts_user_change", args=[rows["whale"]])),
            staff.Page("change_generation", "change page: a generation",
                       reverse("admin:generations_generation_change", args=[rows["generation"]])),
            staff.Page("change_project", "change page: the whale's biggest project",
                       reverse("admin:projects_project_change", args=[rows["project"]])),
            staff.Page("change_stack", "change page: the most used style stack",
                       reverse("admin:stylestacks_stylestack_change", args=[rows["stack"]])),
            staff.Page("provider_cost", "provider cost report", reverse("admin-provider-cost")),
            staff.Page("dbhealth", "database health (reported only)", reverse("admin-dbhealth"), enforced=False),
        ]  # fmt: skip
        return pages

    # -- 3. load

    def load(self, server: Server, name: str, method: str, entries: list[dict], clients: int, seconds: float,
             expect=(200,), record=True) -> Run:  # fmt: skip
        plan_path = self.workdir / f"{name}.plan.json"
        samples_path = self.workdir / f"{name}.samples.json"
        plan = {
            "name": name,
            "method": method,
            "requests": entries,
            "max_requests": self.profile.max_requests,
            "expect": list(expect),
            "samples_file": str(samples_path),
        }
        plan_path.write_text(json.dumps(plan))
        # A window in which no response came back measured nothing (a short smoke window on
        # a busy machine can end before locust's clients have sent their first request):
        # run it again, twice as long, at most twice.
        for attempt in range(3):
            window = seconds * 2**attempt
            cmd = [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
                "-u", str(clients), "-r", str(clients), "-t", f"{max(1, round(window))}s", "--stop-timeout", "0",
                "--host", server.url, "--exit-code-on-error", "0", "--loglevel", "WARNING",
            ]  # fmt: skip
            with open(self.workdir / f"{name}.locust.log", "wb") as log:
                subprocess.run(cmd, env={**os.environ, "BENCH_PLAN": str(plan_path)}, stdout=log,
                               stderr=subprocess.STDOUT, check=True, timeout=window + 120)  # fmt: skip
            data = json.loads(samples_path.read_text())
            samples = data["samples"]
            if samples:
                break
            self.say(f"{name}: no response within {window:.1f} s; measuring again for {2 * window:.1f} s")
        allowed = set(data["expect"])
        errors = sum(1 for _, _, status in samples if status not in allowed)
        latencies = [ms for _, ms, _ in samples]
        if samples:
            begin = min(start for start, _, _ in samples)
            end = max(start + ms / 1000 for start, ms, _ in samples)
            span = max(end - begin, 1e-9)
        else:
            span = window
        run = Run(
            name,
            clients,
            len(samples),
            errors,
            span,
            len(samples) / span,
            percentile(latencies, 50),
            percentile(latencies, 95),
            percentile(latencies, 99),
            data["errors"][:10],
            latencies,
        )
        if record:
            self.runs[name] = run
            self.say(
                f"{name:<26} {run.requests:>6} req  {run.rps:8.1f} req/s  p50 {run.p50:7.2f} ms  "
                f"p95 {run.p95:7.2f} ms  p99 {run.p99:7.2f} ms  errors {run.errors}"
            )
        return run

    def compare(self, *sides: tuple[str, Server, list[dict]], clients: int = 1, seconds: float | None = None,
                rounds: int = 3, method: str = "GET", expect=(200,)) -> None:  # fmt: skip
        """The sides alternate round by round (a drift of the machine falls on both);
        each side's rounds are pooled into one run under its name. The smoke run, which
        enforces no speed, measures one round of each side."""
        rounds = 1 if self.smoke else rounds
        pooled: dict[str, list[Run]] = {name: [] for name, _, _ in sides}
        each = (seconds or self.profile.latency_s) / rounds
        for round_ in range(1, rounds + 1):
            for name, server, entries in sides:
                pooled[name].append(self.load(server, f"{name} #{round_}", method, entries, clients, each, expect))
        for name, runs in pooled.items():
            self.runs[name] = combine(name, runs)

    def warm(self, server: Server, method: str, entries: list[dict], clients: int, expect=(200,)) -> None:
        self.load(server, f"warmup-{server.name}", method, entries, clients, self.profile.warmup_s, expect, False)

    # -- the whole run

    def run(self) -> int:
        self.say(f"benchmark ({'smoke' if self.smoke else 'full'}) in {self.workdir}")
        for key in ("small", "large"):
            self.prepare(key)
        try:
            return self.measure()
        finally:
            for server in self.servers.values():
                server.stop()
            if not self.keep_data:
                for key in ("small", "large"):
                    drop_database(self.db[key], via=self.base_name)
                self.say("benchmark databases dropped")

    def measure(self) -> int:
        p = self.profile
        for key in ("small", "large"):
            self.say(f"probing {self.db[key]} (queries per request, deep cursor, plans)")
            self.probe[key] = self.probe_database(key)

        secret = secrets.token_urlsafe(48)
        # The servers verify the access tokens minted here: they are given this process's
        # keys (the app: the private ones; the baseline: the JWKS the app publishes).
        keys = jwt_keys.key_set()
        common = {
            "DEBUG": "0",
            "SECRET_KEY": secret,
            "JWT_SIGNING_KEY": settings.SIMPLE_JWT["SIGNING_KEY"],
            "JWT_ALGORITHM": keys.algorithm,
            "JWT_SIGNING_KEYS": keys.source,
            "JWT_SIGNING_KEYS_FILE": "",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "GUNICORN_MAX_REQUESTS": "0",  # no worker recycling in the middle of a measurement
            "PASSWORD_BREACH_CHECK": "0",
        }
        # The admin's pages need the static files' manifest, as in production.
        common["STATIC_ROOT"] = str(self.collected_static(common))
        self.servers = {
            "app": Server(
                "app", "velro.wsgi:application", {**common, **child_database_env(self.db["large"])},
                self.workdir, "/api/v1/health", 200,
            ),
            "app-no-rls": Server(
                "app-no-rls", "velro.wsgi:application",
                {**common, **child_database_env(self.db["large"]), "VELRO_BENCH_DISABLE_ROLE_SWITCH": "1"},
                self.workdir, "/api/v1/health", 200,
            ),
            "app-10k": Server(
                "app-10k", "velro.wsgi:application", {**common, **child_database_env(self.db["small"])},
                self.workdir, "/api/v1/health", 200,
            ),
            "baseline": Server(
                "baseline", "bench.baseline:application",
                {
                    **common,
                    "BASELINE_DATABASE_URL": psycopg.conninfo.make_conninfo(**connection_kwargs(self.db["large"])),
                    "BASELINE_JWT_KEY": settings.SIMPLE_JWT["SIGNING_KEY"],
                    "BASELINE_JWT_JWKS": json.dumps(keys.jwks()),
                },
                self.workdir, "/api/v1/generations", 401,
            ),
        }  # fmt: skip
        for server in self.servers.values():
            server.start()
        for server in self.servers.values():
            server.wait_ready()
        self.say("servers up: " + ", ".join(f"{s.name} {s.url}" for s in self.servers.values()))

        large, small = self.probe["large"], self.probe["small"]
        heavy_large = [self.entry("/api/v1/generations", *row) for row in large["heavy_users"]]
        heavy_small = [self.entry("/api/v1/generations", *row) for row in small["heavy_users"]]
        deep_large = [self.entry(large["deep_path"], *large["heavy_users"][0])]
        deep_small = [self.entry(small["deep_path"], *small["heavy_users"][0])]
        app, no_rls, app10k, baseline = (self.servers[k] for k in ("app", "app-no-rls", "app-10k", "baseline"))

        same_json = self.compare_json(app, baseline, heavy_large[0], deep_large[0])

        # Throughput: the app against the baseline, the same heavy users, the same load.
        for server in (baseline, app):
            self.warm(server, "GET", heavy_large, p.get_clients)
        self.compare(
            ("baseline GET 1m", baseline, heavy_large),
            ("app GET 1m", app, heavy_large),
            clients=p.get_clients,
            seconds=p.throughput_s,
        )

        # Latency, one client: RLS on/off alternated; 1M against 10k, first and deep page.
        for server in (no_rls, app10k):
            self.warm(server, "GET", heavy_large if server is no_rls else heavy_small, 1)
        # Each pair alternates in short rounds, so drift (a checkpoint, a neighbour's
        # load) falls on both sides; the rounds are pooled.
        self.compare(("rls on", app, heavy_large[:1]), ("rls off", no_rls, heavy_large[:1]))
        self.compare(("first page 10k", app10k, heavy_small[:1]), ("first page 1m", app, heavy_large[:1]))
        self.compare(("deep page 10k", app10k, deep_small), ("deep page 1m", app, deep_large))

        # Explore over the public stacks.
        word = large["explore"]["q"]
        explore = [self.entry(f"/api/v1/style-stacks/explore?q={word}", *row) for row in large["heavy_users"]]
        self.warm(app, "GET", explore, p.explore_clients)
        self.load(app, "explore q 1m", "GET", explore, p.explore_clients, p.latency_s)

        # The heavy people's API: the whale (100k rows) against a heavy person (10k) on the
        # 1M server, endpoint by endpoint, alternating.
        self.heavy = self.heavy_endpoints(large["scale"]["people"])
        for endpoint in self.heavy:
            self.warm(app, "GET", endpoint["whale"] + endpoint["heavy"], 1)
            self.compare((f"{endpoint['name']} 100k", app, endpoint["whale"]),
                         (f"{endpoint['name']} 10k", app, endpoint["heavy"]), seconds=p.heavy_s)  # fmt: skip

        # The admin, as a staff member, on the 10k and the 1M servers side by side.
        cookies, pages = self.staff_setup(secret)
        self.admin_pages_by_key = pages
        self.admin = staff.measure(
            pages, {"small": app10k.url, "large": app.url}, cookies,
            min_samples=p.admin_min, max_samples=p.admin_max, budget_s=p.admin_budget_s, say=self.say,
        )  # fmt: skip

        # The hottest write: 32 people creating generations at once, through the app and
        # through the baseline's call of the same database function, alternating.
        posters = datasets.light_user_emails(self.spec["large"], p.post_clients)
        post = self.post_entries(large["post_model"], posters)
        books_before = self.books(posters)
        post_json = self.compare_post_json(app, baseline, post[0])
        for server in (baseline, app):
            self.warm(server, "POST", post, p.post_clients, expect=(201,))
        self.compare(
            ("baseline POST 1m", baseline, post),
            ("POST generations 1m", app, post),
            clients=p.post_clients,
            seconds=p.post_s,
            method="POST",
            expect=(201,),
        )
        books_after = self.books(posters)
        memory = {name: round(server.peak_worker_rss_mb(), 1) for name, server in self.servers.items()}

        targets = self.targets(same_json, books_before, books_after, post_json)
        return self.report(targets, memory)

    def heavy_endpoints(self, people: dict) -> list[dict]:
        """The stats, the filtered lists (each filter at a value with few matches) and the
        ledger list: for each, the whale's request and the heavy person's."""
        endpoints = [("stats", "/api/v1/generations/stats", None)]
        for name in people["whale"]["filters"]:
            endpoints.append((f"list {name}", "/api/v1/generations", name))
        endpoints += [
            ("ledger", "/api/v1/credits/transactions", None),
            ("ledger type=grant", "/api/v1/credits/transactions?type=grant", None),
        ]
        result = []
        for name, path, filter_name in endpoints:
            entry = {"name": name}
            for who in ("whale", "heavy"):
                person = people[who]
                full = f"{path}?{person['filters'][filter_name]['query']}" if filter_name else path
                entry[who] = [self.entry(full, *person["user"])]
                entry[f"{who}_path"] = full
                entry[f"{who}_rows"] = person["filters"][filter_name]["rows"] if filter_name else None
            result.append(entry)
        return result

    def collected_static(self, env: dict) -> Path:
        """``collectstatic`` as production runs it (hashed names, compressed copies), into
        ``<VELRO_DATA_DIR>/bench-static/<fingerprint>``: a minute on this machine, so it is
        kept and reused while no static file changes (the fingerprint covers every file the
        finders list, by name, size and modification time)."""
        import hashlib
        import shutil

        from django.contrib.staticfiles.finders import get_finders

        digest = hashlib.sha256()
        for finder in get_finders():
            for path, storage in sorted(finder.list(["CVS", ".*", "*~"]), key=lambda item: item[0]):
                stat = os.stat(storage.path(path))
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        base = Path(settings.VELRO_DATA_DIR) / "bench-static"
        root = base / digest.hexdigest()[:16]
        if (root / "staticfiles.json").is_file():
            return root
        self.say(f"collectstatic into {root} (once while the static files stay the same)")
        staging = base / f".{root.name}.{os.getpid()}"
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
            cwd=settings.BASE_DIR,
            env={**os.environ, **env, "STATIC_ROOT": str(staging)},
            check=True,
        )
        try:
            staging.rename(root)
        except OSError:  # another run finished first: theirs is the same
            shutil.rmtree(staging, ignore_errors=True)
        for other in base.iterdir():
            if other != root and not other.name.startswith("."):
                shutil.rmtree(other, ignore_errors=True)
        return root

    def entry(self, path: str, user_id: str, email: str, body=None) -> dict:
        return {"path": path, "token": self.token(user_id, email), "body": body}

    def post_entries(self, model: str, emails: list[str]) -> list[dict]:
        """The POST requests, one person each. The parameters are the model's defaults,
        filled here as the app fills them (generations.schemas.validate_parameters), so the
        app and the baseline pass generation_create the same arguments."""
        from generations.models import AIModel
        from generations.schemas import validate_parameters

        people = self.people("large", emails)
        with psycopg.connect(**connection_kwargs(self.db["large"])) as conn:
            for user_id, _ in people:
                conn.execute(
                    "SELECT public.credits_apply(%s, 1000000, 'grant', 'benchmark: POST generations')", [user_id]
                )
        with on_database(self.db["large"]):
            schema = AIModel.objects.get(pk=model).parameter_schema
        body = {
            "ai_model": model,
            "prompt": "a lighthouse on a cliff at dusk, volumetric fog, long exposure",
            "parameters": validate_parameters(schema, {}),
        }
        return [self.entry("/api/v1/generations", str(user_id), email, body) for user_id, email in people]

    def compare_post_json(self, app: Server, baseline: Server, entry: dict) -> dict:
        """One POST to each: the same JSON but for the new rows' own id and time."""
        bodies = []
        for server in (app, baseline):
            request = urllib.request.Request(
                server.url + entry["path"],
                data=json.dumps(entry["body"]).encode(),
                method="POST",
                headers={"Authorization": f"Bearer {entry['token']}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    body = {"http_status": response.status, **json.loads(response.read())}
            except urllib.error.HTTPError as exc:
                body = {"http_status": exc.code, "body": exc.read()[:300].decode(errors="replace")}
            body.pop("id", None)
            body.pop("created_at", None)
            bodies.append(body)
        same = bodies[0] == bodies[1] and bodies[0]["http_status"] == 201
        return {"same": same, "difference": "" if same else first_difference(bodies[0], bodies[1])}

    def books(self, emails: list[str]) -> dict:
        """Generations, charges, ledger usage and balances of the POST people, and the
        credit invariant of everyone, from SQL."""
        from credits.selectors import credits_invariant_violations

        with on_database(self.db["large"]):
            violations = credits_invariant_violations()
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    WITH people AS (SELECT id, credits_balance FROM public.users WHERE email = ANY(%s))
                    SELECT (SELECT count(*) FROM public.generations WHERE user_id IN (SELECT id FROM people)),
                           (SELECT coalesce(sum(credits_charged), 0) FROM public.generations
                             WHERE user_id IN (SELECT id FROM people)),
                           (SELECT coalesce(-sum(amount), 0) FROM public.credit_transactions
                             WHERE type = 'usage' AND user_id IN (SELECT id FROM people)),
                           (SELECT coalesce(sum(credits_balance), 0) FROM people)
                    """,
                    [emails],
                )
                generations, charged, spent, balance = cursor.fetchone()
        return {
            "violations": len(violations),
            "generations": generations,
            "charged": int(charged),
            "spent": int(spent),
            "balance": int(balance),
        }

    def compare_json(self, app: Server, baseline: Server, *entries: dict) -> dict:
        """The baseline must answer exactly what the app answers, or it bounds nothing."""
        mismatches = []
        for entry in entries:
            bodies = []
            for server in (app, baseline):
                request = urllib.request.Request(
                    server.url + entry["path"], headers={"Authorization": f"Bearer {entry['token']}"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    # Absolute URLs carry each server's own address: compare them without it.
                    body = json.loads(response.read().decode().replace(server.url, "http://server"))
                # Links carry each server's own host and port; compare the cursors.
                for link in ("next", "previous"):
                    if body.get(link):
                        body[link] = parse_qs(urlsplit(body[link]).query)
                bodies.append(body)
            if bodies[0] != bodies[1]:
                mismatches.append(f"{entry['path']}: {first_difference(bodies[0], bodies[1])}")
        return {"compared": [e["path"] for e in entries], "mismatches": mismatches}

    # -- 4. targets and report

    def targets(self, same_json: dict, before: dict, after: dict, post_json: dict) -> list[Target]:
        r, smoke = self.runs, self.smoke
        large = self.probe["large"]
        ratio = r["app GET 1m"].rps / r["baseline GET 1m"].rps
        rls = r["rls on"].p50 / r["rls off"].p50
        first = r["first page 1m"].p50 / r["first page 10k"].p50
        deep = r["deep page 1m"].p50 / r["deep page 10k"].p50
        queries = [self.probe["large"]["queries"][k] for k in ("10", "50", "100")]
        post = r["POST generations 1m"]
        post_base = r["baseline POST 1m"]
        post_ratio = post.rps / post_base.rps if post_base.rps else 0.0
        created = after["generations"] - before["generations"]
        charged = after["charged"] - before["charged"]
        spent = after["spent"] - before["spent"]
        balance_drop = before["balance"] - after["balance"]
        books_ok = after["violations"] == 0 and charged == spent == balance_drop
        explore = r["explore q 1m"]
        ex = large["explore"]
        stacks = self.spec["large"].public_stacks
        session = large["session_check"]
        session_share = (session["with_us"] - session["without_us"]) / 1000 / r["first page 1m"].p50
        session_indexed = bool(re.search(r"Index (Only )?Scan using \w+ on sessions", session["plan"])) and (
            "Seq Scan on sessions" not in session["plan"]
        )
        plans_ok = all(
            "generations_user_created_idx" in plan and "Seq Scan" not in plan for plan in large["plans"].values()
        )
        targets = [
            Target("get_throughput_vs_baseline", "GET generations (heavy user, 50/page): app ÷ baseline req/s",
                   f"≥ {GET_RATIO:.2f}", f"{ratio:.2f}", ratio >= GET_RATIO, not smoke,
                   f"app {r['app GET 1m'].rps:.0f} req/s, baseline {r['baseline GET 1m'].rps:.0f} req/s, "
                   f"{self.profile.get_clients} clients"),
            Target("baseline_same_json", "baseline answers the same JSON as the app", "identical",
                   "identical" if not same_json["mismatches"] else f"differs: {same_json['mismatches']}",
                   not same_json["mismatches"], True, "first page and the deep page"),
            Target("rls_overhead", "same endpoint, RLS on ÷ role switch off (p50 latency)", "≤ 1.10",
                   f"{rls:.3f}", rls <= 1.10, not smoke,
                   f"on {r['rls on'].p50:.2f} ms, off {r['rls off'].p50:.2f} ms, 1 client"),
            Target("scale_first_page", "first page p50 latency: 1M rows ÷ 10k rows", "≤ 1.5", f"{first:.2f}",
                   first <= 1.5, not smoke,
                   f"1M {r['first page 1m'].p50:.2f} ms, 10k {r['first page 10k'].p50:.2f} ms"),
            Target("scale_deep_page", f"page after row {self.profile.deep_rows:,} (cursor): 1M ÷ 10k", "≤ 1.5",
                   f"{deep:.2f}", deep <= 1.5, not smoke,
                   f"1M {r['deep page 1m'].p50:.2f} ms, 10k {r['deep page 10k'].p50:.2f} ms"),
            Target("page_plans_use_index", "page queries: index scan on (user, created_at, id), no seq scan/sort",
                   "index scan", "index scan" if plans_ok else "see plans", plans_ok, True),
            Target("queries_constant", "SQL statements per request at page_size 10/50/100", "equal",
                   "/".join(map(str, queries)), len(set(queries)) == 1, True),
            Target("session_check_indexed", "the caller's read finds the token's session through an index",
                   "index scan", "index scan" if session_indexed else "see plan", session_indexed, not smoke,
                   "smoke: a table of a few pages is rightly scanned"),
            Target("session_check_cost", "the session check per request (caller's read with − without it) "
                   "÷ GET first page p50", "≤ 2 %", f"{session_share:.1%}", session_share <= 0.02, not smoke,
                   f"median of {session['rounds']}: {session['with_us']:.0f} µs with, "
                   f"{session['without_us']:.0f} µs without; first page {r['first page 1m'].p50:.2f} ms"),
            Target("post_throughput_vs_baseline",
                   f"POST generations, {self.profile.post_clients} clients: app ÷ baseline (same SQL function) req/s",
                   f"≥ {POST_RATIO:.2f}", f"{post_ratio:.2f}", post_ratio >= POST_RATIO, not smoke,
                   f"app {post.rps:.0f} req/s (p95 {post.p95:.0f} ms), baseline {post_base.rps:.0f} req/s "
                   f"(p95 {post_base.p95:.0f} ms); {post.requests + post_base.requests} created"),
            Target("post_baseline_same_json", "POST: the baseline answers the same JSON (but id, created_at)",
                   "identical", "identical" if post_json["same"] else "differs", post_json["same"], True,
                   post_json["difference"]),
            Target("post_errors", "POST generations errors (app and baseline)", "0",
                   str(post.errors + post_base.errors), post.errors + post_base.errors == 0, True,
                   "; ".join((post.error_samples + post_base.error_samples)[:3])),
            Target("post_books", "after the POST run: balance invariant for every person, charges = ledger",
                   "holds", "holds" if books_ok else "BROKEN", books_ok, True,
                   f"{created} generations (warm-up and run), {charged} credits charged, ledger usage {spent}, "
                   f"balances down {balance_drop}, invariant violations {after['violations']}"),
            Target("explore_p95", f"explore?q= over {stacks:,} public stacks, p95", "< 50 ms",
                   f"{explore.p95:.1f} ms", explore.p95 < 50, not smoke,
                   f"q={ex['q']!r} matched {ex['count']} stacks, {self.profile.explore_clients} clients"),
            Target("explore_index", "explore used the full-text GIN index; its search no seq scan", "index scan",
                   f"index scans {ex['index_scans']}, seq scans {ex['seq_scans']}",
                   ex["index_scans"] > 0 and ex["seq_scans"] == 0, True),
        ]  # fmt: skip
        return targets + self.heavy_targets() + self.admin_targets()

    def heavy_targets(self) -> list[Target]:
        """Per endpoint: the whale's p95 (100k rows of theirs in the 1M set) and its growth
        from a heavy person's (10k), measured side by side on the same server."""
        people = self.probe["large"]["scale"]["people"]
        rows = f"{people['whale']['generations']:,} vs {people['heavy']['generations']:,} generations"
        targets = []
        for endpoint in self.heavy:
            name = endpoint["name"]
            whale, heavy = self.runs[f"{name} 100k"], self.runs[f"{name} 10k"]
            growth = whale.p95 / heavy.p95 if heavy.p95 else float("inf")
            floored = max(whale.p95, HEAVY_FLOOR_MS) / max(heavy.p95, HEAVY_FLOOR_MS)
            errors = whale.errors + heavy.errors
            matches = (
                f"; matching rows {endpoint['whale_rows']:,} vs {endpoint['heavy_rows']:,}"
                if endpoint["whale_rows"] is not None
                else ""
            )
            passed = errors == 0 and whale.p95 < HEAVY_P95_MS and floored <= HEAVY_GROWTH
            targets.append(
                Target(
                    "heavy_" + re.sub(r"\W+", "_", name).strip("_"),
                    f"API {name}: the whale's p95; ÷ a 10k person's",
                    f"< {HEAVY_P95_MS:.0f} ms; ≤ {HEAVY_GROWTH:g}×",
                    f"{whale.p95:.1f} ms; {growth:.2f}×",
                    passed,
                    not self.smoke,
                    f"{endpoint['whale_path']}: p95 {whale.p95:.1f} ms vs {heavy.p95:.1f} ms (p50 {whale.p50:.1f} "
                    f"vs {heavy.p50:.1f}), {rows}{matches}, 1 client, errors {errors}"
                    + (f": {whale.error_samples[:1] + heavy.error_samples[:1]}" if errors else ""),
                )
            )
        return targets

    def admin_targets(self) -> list[Target]:
        """Per admin page: p95 at 1M rows, and its growth from the 10k set; and, enforced
        in the smoke run too, that every page answered the staff member with a 200."""
        targets, failing = [], []
        for key, timings in self.admin.items():
            page = self.admin_pages_by_key["large"][key]
            small, large = timings["small"], timings["large"]
            p95_large = percentile(large.latencies, 95)
            p95_small = percentile(small.latencies, 95)
            growth = p95_large / p95_small if p95_small else float("inf")
            floored = max(p95_large, ADMIN_FLOOR_MS) / max(p95_small, ADMIN_FLOOR_MS)
            errors = small.errors + large.errors
            if errors and page.enforced:
                failing.append(f"{page.name}: {errors[0]}")
            passed = not errors and p95_large < ADMIN_P95_MS and floored <= ADMIN_GROWTH
            targets.append(
                Target(
                    f"admin_{key}",
                    f"admin {page.name}: p95 at 1M; ÷ 10k",
                    f"< {ADMIN_P95_MS / 1000:g} s; ≤ {ADMIN_GROWTH:g}×",
                    ("HTTP " + "/".join(sorted({str(s) for s in large.statuses + small.statuses if s != 200})) + "; ")
                    * bool(errors)
                    + f"{p95_large:.0f} ms; {growth:.2f}×",
                    passed,
                    page.enforced and not self.smoke,
                    f"{page.path}: 1M p95 {p95_large:.0f} ms ({max(large.sizes, default=0) // 1024} KiB), "
                    f"10k p95 {p95_small:.0f} ms, {len(large.latencies)} + {len(small.latencies)} requests"
                    + (f"; {errors[0]}" if errors else ""),
                )
            )
        answered = not failing
        targets.append(
            Target("admin_pages_answer", "every admin page answers the staff member (200, no redirect)", "all 200",
                   "all 200" if answered else f"{len(failing)} failing", answered, True, "; ".join(failing[:5]))
        )  # fmt: skip
        return targets

    def report(self, targets: list[Target], memory: dict) -> int:
        width = max(len(t.label) for t in targets)
        goal_w = max(10, *(len(t.goal) for t in targets))
        measured_w = max(12, *(len(t.measured) for t in targets if len(t.measured) <= 24))
        lines = [
            "",
            f"{'target':<{width}}  {'goal':>{goal_w}}  {'measured':>{measured_w}}  result",
            f"{'-' * width}  {'-' * goal_w}  {'-' * measured_w}  ------",
        ]
        for t in targets:
            verdict = ("PASS" if t.passed else "FAIL") + ("" if t.enforced else " (not enforced)")
            lines.append(f"{t.label:<{width}}  {t.goal:>{goal_w}}  {t.measured:>{measured_w}}  {verdict}")
            if t.detail:
                lines.append(f"{'':<{width}}    {t.detail}")
        lines.append("peak worker memory (VmHWM, MiB): " + ", ".join(f"{name} {mb:.0f}" for name, mb in memory.items()))
        self.out.write("\n".join(lines))
        for name in ("first_page_sql", "deep_sql"):
            self.out.write(f"\nEXPLAIN (ANALYZE, BUFFERS), 1M, {name}:\n{self.probe['large']['plans'][name]}")
        self.out.write(f"\nEXPLAIN, 1M, the caller's read:\n{self.probe['large']['session_check']['plan']}")
        results = {
            "version": 1,
            "mode": "smoke" if self.smoke else "full",
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 1),
            "machine": machine(),
            "data_sets": {key: asdict(spec) for key, spec in self.spec.items()},
            "targets": [asdict(t) for t in targets],
            "runs": {name: run.summary() for name, run in self.runs.items()},
            "queries_per_request": {key: probe["queries"] for key, probe in self.probe.items()},
            "baseline_queries_per_request": self.baseline_query_count(),
            "peak_worker_rss_mb": memory,
            "plans": {key: probe["plans"] for key, probe in self.probe.items()},
            "session_check": self.probe["large"]["session_check"],
            "explore": self.probe["large"]["explore"],
            "heavy_api": {
                "people": self.probe["large"]["scale"]["people"],
                "endpoints": [
                    {key: value for key, value in endpoint.items() if key not in ("whale", "heavy")}
                    for endpoint in self.heavy
                ],
            },
            "admin": {
                key: {
                    "name": self.admin_pages_by_key["large"][key].name,
                    "enforced": self.admin_pages_by_key["large"][key].enforced,
                    **{
                        side: {
                            "path": self.admin_pages_by_key[side][key].path,
                            "requests": len(t.latencies),
                            "p50": percentile(t.latencies, 50),
                            "p95": percentile(t.latencies, 95),
                            "max_kib": max(t.sizes, default=0) // 1024,
                            "statuses": sorted(set(t.statuses)),
                            "errors": t.errors[:3],
                        }
                        for side, t in timings.items()
                    },
                }
                for key, timings in self.admin.items()
            },
        }
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        self.say(f"results written to {self.output}")
        failed = [t.key for t in targets if t.enforced and not t.passed]
        if failed:
            self.out.write(self.style.ERROR("FAILED: " + ", ".join(failed)))
            return 1
        self.out.write(self.style.SUCCESS("all targets PASS" + (" (smoke: correctness only)" if self.smoke else "")))
        return 0

    def baseline_query_count(self) -> int | None:
        server = self.servers.get("baseline")
        probe = self.probe["large"]
        request = urllib.request.Request(
            server.url + "/api/v1/generations",
            headers={"Authorization": f"Bearer {self.token(*probe['heavy_users'][0])}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            value = response.headers.get("X-Query-Count")
        return int(value) if value else None


def explore_word() -> str:
    """A word of the public stacks' text found in about 2% of them: a typical search."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.style_stacks WHERE visibility = 'public'")
        (total,) = cursor.fetchone()
        cursor.execute(
            "SELECT word FROM ts_stat($$SELECT search_vector FROM public.style_stacks WHERE visibility = 'public'$$) "
            "WHERE length(word) > 3 ORDER BY abs(ndoc - %s), word LIMIT 1",
            [max(1, total // 50)],
        )
        row = cursor.fetchone()
    return row[0] if row else "noir"


def machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "postgresql": server_version,
        "platform": platform.platform(),
    }
