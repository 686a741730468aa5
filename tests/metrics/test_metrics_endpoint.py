"""GET /metrics: who may read it, what it says, and that the figures move when requests,
generations, refunds, sign-ups and sign-ins happen (through the API and the worker's own
code paths, counted when their transaction commits)."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations import services
from generations.models import Generation, WorkerHeartbeat
from health.metrics import clear_caches
from tests.generations.conftest import FLUX, make
from tests.metrics.conftest import TOKEN, counter, parse, scrape, value

# --- who may read it ----------------------------------------------------------------


def test_without_a_token_or_a_network_there_is_no_endpoint(client, settings, db):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything-at-all-12345").status_code == 404


def test_with_debug_on_loopback_may_read_it_unconfigured(client, settings, db):
    settings.METRICS_TOKEN, settings.DEBUG = "", True
    assert client.get("/metrics").status_code == 200  # the test client's REMOTE_ADDR is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-0123456789xx", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_a_missing_or_wrong_token_is_refused(client, db, header):
    response = client.get("/metrics", **({"HTTP_AUTHORIZATION": header} if header is not None else {}))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"velro_" not in response.content


def test_the_right_token_reads_the_text_format(client, db):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert value(parse(response.content.decode()), "velro_database_up") == 1.0


def test_openmetrics_is_served_when_asked_for(client, db):
    response = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_an_allowed_network_reads_it_without_a_token(client, settings, db):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    # Another address is refused, and a forged X-Forwarded-For does not help it.
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.1.1").status_code == 403
    assert client.get("/metrics").status_code == 403  # loopback is not in the list


def test_token_and_networks_together_accept_either(client, settings, db):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 401


def test_only_get_is_served(client, db):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


# --- requests ------------------------------------------------------------------------


def test_requests_are_counted_by_view_method_and_status(alice, api_as, client):
    labels = {"view": "generation-list", "method": "GET", "status": "200"}
    before = counter("velro_http_requests_total", **labels)
    observed = counter("velro_http_request_duration_seconds_count", view="generation-list")
    for _ in range(3):
        assert api_as(alice).get("/api/v1/generations").status_code == 200
    assert counter("velro_http_requests_total", **labels) == before + 3
    assert counter("velro_http_request_duration_seconds_count", view="generation-list") == observed + 3
    # An unauthenticated call is the same view with its own status; an unknown path is
    # "none", never the path itself (bounded labels).
    refused = counter("velro_http_requests_total", view="generation-list", method="GET", status="401")
    client.get("/api/v1/generations")
    assert counter("velro_http_requests_total", view="generation-list", method="GET", status="401") == refused + 1
    client.get("/api/v1/no-such-thing-1234")  # the API's catch-all pattern
    client.get("/no-such-page-1234")  # no pattern at all
    samples = scrape(client)
    assert value(samples, "velro_http_requests_total", view="api-not-found", method="GET", status="404") >= 1
    assert value(samples, "velro_http_requests_total", view="none", method="GET", status="404") >= 1
    assert not any("no-such-thing" in str(labels) for _, labels in samples)


# --- the product -----------------------------------------------------------------------


def test_generations_are_counted_from_creation_to_completion_failure_and_cancel(
    alice, api_as, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    created, usage = (
        counter("velro_generations_created_total", model=FLUX),
        counter("velro_credits_total", type="usage"),
    )
    done = {s: counter("velro_generations_finished_total", model=FLUX, status=s) for s in ("completed", "failed")}
    cancelled = counter("velro_generations_finished_total", model=FLUX, status="cancelled")
    refunds, refunded = (
        counter("velro_generation_refunds_total", model=FLUX),
        counter("velro_credits_total", type="refund"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        ids = [
            api_as(alice).post("/api/v1/generations", {"ai_model": FLUX, "prompt": f"p{i}"}).json()["id"]
            for i in range(3)
        ]
    assert counter("velro_generations_created_total", model=FLUX) == created + 3
    assert counter("velro_credits_total", type="usage") == usage + 75

    # The API's cancel: the database function refunds it.
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as(alice).post(f"/api/v1/generations/{ids[0]}/cancel").status_code == 200
    assert counter("velro_generations_finished_total", model=FLUX, status="cancelled") == cancelled + 1
    # The worker renders one (local provider) …
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_worker", "--max-items", "1", "--idle-sleep", "0", stdout=io.StringIO())
    assert counter("velro_generations_finished_total", model=FLUX, status="completed") == done["completed"] + 1
    # … and its sweep fails and refunds one stuck in processing.
    stuck = services.generation_claim_next()
    Generation.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.generation_sweep(timeout_seconds=60) == 1
    assert counter("velro_generations_finished_total", model=FLUX, status="failed") == done["failed"] + 1
    assert counter("velro_generation_refunds_total", model=FLUX) == refunds + 2
    assert counter("velro_credits_total", type="refund") == refunded + 50


def test_a_rolled_back_generation_counts_nothing(alice):
    created = counter("velro_generations_created_total", model=FLUX)
    make(alice)  # the test's transaction never commits: on_commit never runs
    assert counter("velro_generations_created_total", model=FLUX) == created


def test_sign_ups_and_sign_ins_are_counted(api, db, django_capture_on_commit_callbacks):
    signups, bonus = counter("velro_signups_total"), counter("velro_credits_total", type="signup_bonus")
    signins = counter("velro_signins_total", method="password")
    password = "correct horse battery staple 42"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/auth/register", {"email": "new@example.com", "password": password}, format="json")
    assert response.status_code == 201, response.json()
    assert counter("velro_signups_total") == signups + 1
    assert counter("velro_credits_total", type="signup_bonus") == bonus + 100
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/auth/login", {"email": "new@example.com", "password": password}, format="json")
    assert response.status_code == 200
    assert counter("velro_signins_total", method="password") >= signins + 1


def test_webhook_deliveries_are_counted_by_outcome(alice, client, settings):
    import json

    from generations.webhooks import sign

    settings.WEBHOOK_SECRET = "test-webhook-secret-0123456789"
    make(alice)
    generation = services.generation_claim_next()
    Generation.objects.filter(pk=generation.pk).update(provider_request_id="req-9")
    outcomes = ("applied", "replayed", "refused", "unauthenticated")
    before = {o: counter("velro_webhook_deliveries_total", provider="local", outcome=o) for o in outcomes}
    raw = json.dumps({"request_id": "req-9", "status": "ERROR", "error": "x"}).encode()

    def deliver(signature):
        return client.generic(
            "POST", "/api/v1/webhooks/local", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE=signature
        ).status_code

    good = sign(raw, secret=settings.WEBHOOK_SECRET)
    assert deliver(good) == 200  # applied
    assert deliver(good) == 409  # replayed
    assert deliver("t=1,v1=00") == 401  # a signature that does not verify: recorded, refused
    assert deliver("garbage") == 401  # not even a signature: unauthenticated
    for outcome in outcomes:
        assert counter("velro_webhook_deliveries_total", provider="local", outcome=outcome) == before[outcome] + 1
    # A provider name nobody knows is "other": the URL cannot grow the label set.
    client.generic(
        "POST", "/api/v1/webhooks/made-up-provider", raw, content_type="application/json", HTTP_X_VELRO_SIGNATURE="x"
    )
    assert counter("velro_webhook_deliveries_total", provider="other", outcome="unauthenticated") >= 1


# --- the database's gauges ------------------------------------------------------------


def test_the_gauges_follow_the_queue_and_the_workers(alice, bob, client):
    first = make(alice)
    make(bob)
    Generation.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(minutes=7))
    samples = scrape(client)
    assert value(samples, "velro_generations", status="pending", model=FLUX) == 2
    # (now() is the test transaction's start, a little before the update above)
    assert value(samples, "velro_generation_oldest_pending_age_seconds") >= 6 * 60
    assert value(samples, "velro_database_connections", state="active") >= 1
    assert value(samples, "velro_database_max_connections") > 0
    assert value(samples, "velro_ledger_invariant_violations") == 0
    assert value(samples, "velro_ledger_invariant_checked") == 2

    # A worker's heartbeat and claim: its row, written by the worker's loop.
    call_command("run_worker", "--max-items", "1", "--idle-sleep", "0", stdout=io.StringIO())
    # (a clean stop deletes the row; one left by a worker that died is what /metrics shows)
    WorkerHeartbeat.objects.create(
        worker="host-a:42",
        hostname="host-a",
        pid=42,
        started_at=timezone.now(),
        seen_at=timezone.now(),
        last_claim_at=timezone.now() - timedelta(seconds=30),
        claims=5,
    )
    samples = scrape(client)  # still cached: the same figures for METRICS_CACHE_SECONDS
    assert value(samples, "velro_generations", status="pending", model=FLUX) == 2
    assert value(samples, "velro_worker_heartbeat_timestamp_seconds", worker="host-a:42") is None

    clear_caches()
    samples = scrape(client)
    assert value(samples, "velro_generations", status="pending", model=FLUX) == 1
    assert value(samples, "velro_generations", status="completed", model=FLUX) == 1
    assert value(samples, "velro_generation_oldest_pending_age_seconds") < 60
    seen = value(samples, "velro_worker_heartbeat_timestamp_seconds", worker="host-a:42")
    assert abs(seen - timezone.now().timestamp()) < 60
    claim = value(samples, "velro_worker_last_claim_timestamp_seconds", worker="host-a:42")
    assert 20 < seen - claim < 40
    assert value(samples, "velro_worker_claims", worker="host-a:42") == 5


def test_the_worker_writes_its_heartbeat_while_it_runs_and_removes_it_when_it_stops(alice):
    from generations.management.commands.run_worker import Command

    make(alice)
    command = Command(stdout=io.StringIO(), stderr=io.StringIO())
    command.claimed(services.generation_claim_next())
    command.heartbeat(force=True)
    row = WorkerHeartbeat.objects.get(worker=command.worker_id)
    assert (row.claims, row.last_claim_at is not None, row.pid > 0) == (1, True, True)
    stale = WorkerHeartbeat.objects.create(
        worker="gone:1",
        hostname="gone",
        pid=1,
        started_at=timezone.now() - timedelta(days=3),
        seen_at=timezone.now() - timedelta(days=2),
    )
    command.forgot_stale = False
    command.heartbeat(force=True)  # the first beat of a worker forgets rows not seen for a day
    assert not WorkerHeartbeat.objects.filter(pk=stale.pk).exists()
    command.forget_heartbeat()
    assert not WorkerHeartbeat.objects.filter(worker=command.worker_id).exists()


def test_a_burst_of_scrapes_runs_the_sql_once(client, alice, settings):
    settings.METRICS_CACHE_SECONDS = 60
    scrape(client)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            scrape(client)
    assert len(queries) == 0
    # Without a cache each scrape runs them: every fast gauge's query (and the up check).
    settings.METRICS_CACHE_SECONDS = 0
    clear_caches()
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
        scrape(client)
    assert len(queries) >= 2 * 7


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_that_cannot_be_written_does_not_stop_the_worker(sql):
    """As during a deploy whose migration has not created the table yet: the worker says
    so and works on (outside a transaction, as run_worker runs)."""
    from generations.management.commands.run_worker import Command

    stderr = io.StringIO()
    command = Command(stdout=io.StringIO(), stderr=stderr)
    sql("ALTER TABLE public.worker_heartbeats RENAME TO worker_heartbeats_gone")
    try:
        command.heartbeat(force=True)  # no exception
    finally:
        sql("ALTER TABLE public.worker_heartbeats_gone RENAME TO worker_heartbeats")
    assert "heartbeat not written" in stderr.getvalue() and "worker_heartbeats" in stderr.getvalue()
    command.heartbeat(force=True)  # and the next beat, with the table back, is written
    assert WorkerHeartbeat.objects.filter(worker=command.worker_id).exists()
    command.forget_heartbeat()


def test_the_last_verified_backup_is_a_gauge_absent_until_one_is_proven(client, db):
    from health.models import BackupRun

    assert value(scrape(client), "velro_backup_last_success_timestamp_seconds") is None
    clear_caches()
    finished = timezone.now() - timedelta(hours=3)
    BackupRun.objects.create(
        name="velro-a.dump", storage="local", status="taken", started_at=finished, finished_at=finished
    )  # taken, never verified: still absent
    assert value(scrape(client), "velro_backup_last_success_timestamp_seconds") is None
    clear_caches()
    BackupRun.objects.filter(name="velro-a.dump").update(verify_ok=True, verified_at=timezone.now())
    BackupRun.objects.create(
        name="velro-b.dump",
        storage="local",
        status="taken",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        verify_ok=False,
    )  # a newer copy that failed its verification does not count
    assert value(scrape(client), "velro_backup_last_success_timestamp_seconds") == pytest.approx(
        finished.timestamp(), abs=1e-3
    )
