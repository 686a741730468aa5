"""GET /api/v1/generations/events: Server-Sent Events from the events process.

Against a real ``manage.py run_events`` (uvicorn) on a free loopback port, connected to
the test database, with a real HTTP client (httpx, streaming). Everything the server must
see is committed (``transactional_db``): it reads on its own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.core import signing
from django.db import ProgrammingError

from accounts.models import Session
from accounts.sessions import access_token_for
from generations import events, services
from generations.models import AIModel, Generation, GenerationEvent
from projects.models import Project
from tests.conftest import TEST_JWT_KEYS, as_role
from tests.generations.conftest import make
from tests.helpers import ROOT, database_url, free_port, wait_for
from tests.metrics.conftest import parse, value

HEARTBEAT = 0.3  # seconds (EVENTS_HEARTBEAT_SECONDS of the test server)
WAIT = 10.0  # seconds any expected message may take, at most (it takes milliseconds)
OUTPUTS = [{"path": "generations/x/0.png", "mime_type": "image/png", "width": 8, "height": 8, "size": 100}]


class EventsServer:
    """``manage.py run_events`` in a subprocess, on the test database."""

    def __init__(self, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1/generations/events"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_events", "--port", str(self.port), "--graceful-timeout", "5"],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "DEBUG": "1",
                "SECRET_KEY": settings.SECRET_KEY,
                "JWT_ALGORITHM": "ES256",
                "JWT_SIGNING_KEYS": TEST_JWT_KEYS,
                "EVENTS_HEARTBEAT_SECONDS": str(HEARTBEAT),
                "LOG_LEVEL": "WARNING",
                **env,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while True:  # ready when the port accepts connections
            assert self.process.poll() is None, self.process.stdout.read()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "run_events did not start"
                time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture
def catalog(transactional_db):
    """The catalog as the migrations seed it: a flush after an earlier transactional test
    empties it (as tests/e2e's seeds do)."""
    from django.apps import apps

    if not AIModel.objects.exists():
        for name in ("0003_seed_catalog", "0009_parameter_defaults_within_limits"):
            module = importlib.import_module(f"generations.migrations.{name}")
            (module.seed if hasattr(module, "seed") else module.fix_defaults)(apps, None)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    events_server = EventsServer()
    yield events_server
    events_server.stop()


class Stream:
    """One SSE connection read in a thread: ``next_event()`` returns the next message
    with an ``event`` (a generation, a close), ``messages`` keeps everything, comments too."""

    def __init__(self, url: str, headers: dict | None = None, params: dict | None = None):
        self.messages: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(WAIT, read=None))
        self._response = self._client.send(
            self._client.build_request("GET", url, headers=headers, params=params), stream=True
        )
        self.status_code = self._response.status_code
        self.headers = self._response.headers
        if self.status_code == 200:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
            assert self.next_message()["comments"] == ["connected"]  # the first bytes
        else:
            self.body = json.loads(self._response.read())
            self.close()

    def _read(self):
        message: dict = {"comments": []}
        try:
            for line in self._response.iter_lines():
                if line == "":
                    self._queue.put(message)
                    message = {"comments": []}
                elif line.startswith(":"):
                    message["comments"].append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    message[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        self._queue.put(None)  # the stream ended

    def next_message(self, timeout: float = WAIT) -> dict | None:
        message = self._queue.get(timeout=timeout)
        if message is not None:
            self.messages.append(message)
        return message

    def next_event(self, timeout: float = WAIT) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            message = self.next_message(max(deadline - time.monotonic(), 0.01))
            if message is None or "event" in message:
                return message

    def generations(self) -> list[dict]:
        return [
            json.loads(m["data"]) | {"event_id": int(m["id"])} for m in self.messages if m.get("event") == "generation"
        ]

    def close(self):
        # The client goes away: its socket is shut down under the reading thread (httpx's
        # close() from this thread would wait for that read to end).
        network = self._response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()
        self._client.close()


def auth(user) -> dict:
    access, _ = access_token_for(user, Session.objects.create(user=user))
    return {"Authorization": f"Bearer {access}"}


def status_events(stream: Stream, count: int) -> list[dict]:
    found = []
    for _ in range(count):
        message = stream.next_event()
        assert message is not None and message["event"] == "generation", stream.messages
        found.append(json.loads(message["data"]) | {"event_id": int(message["id"])})
    return found


def assert_live(stream: Stream, user, *, times: int) -> None:
    """Each of ``times`` new generations of ``user`` arrives on the stream, one by one."""
    for _ in range(times):
        generation = make(user)
        [event] = status_events(stream, 1)
        assert (event["id"], event["status"]) == (str(generation.pk), "pending")


def run_generation(user) -> Generation:
    """pending → processing → completed, as the worker does it, each committed."""
    generation = make(user)
    claimed = services.generation_claim_next()
    assert claimed.pk == generation.pk
    assert services.generation_complete(generation=claimed, outputs=OUTPUTS)
    return generation


# --- the database side ----------------------------------------------------------------


def test_events_are_written_for_status_changes_only(alice, sql):
    generation = make(alice)
    assert list(GenerationEvent.objects.values_list("generation_id", "status")) == [(generation.pk, "pending")]
    services.generation_set_favorite(generation=generation, is_favorite=True)  # the owner's one write
    Generation.objects.filter(pk=generation.pk).update(progress={"stage": "queued"}, status="pending")
    generation.save()  # every column, status unchanged
    assert GenerationEvent.objects.count() == 1
    claimed = services.generation_claim_next()
    services.generation_complete(generation=claimed, outputs=OUTPUTS)
    assert list(GenerationEvent.objects.order_by("id").values_list("status", flat=True)) == [
        "pending",
        "processing",
        "completed",
    ]
    assert {row[0] for row in sql("SELECT user_id FROM public.generation_events")} == {alice.pk}


def test_each_person_reads_only_their_own_events(alice, bob):
    make(alice)
    make(bob)
    with as_role("authenticated", bob) as cursor:
        cursor.execute("SELECT user_id FROM public.generation_events")
        assert [row[0] for row in cursor.fetchall()] == [bob.pk]
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("anon") as cursor:
        cursor.execute("SELECT count(*) FROM public.generation_events")


def test_the_hub_reads_rows_as_their_owner_under_rls(catalog, alice, bob):
    # Even were a payload to name the wrong person, the read runs with the claims of the
    # stream's owner: RLS hides another person's row.
    generation = make(alice)
    hub = events.EventHub()

    async def read(claims_user, owner):
        claims = json.dumps({"sub": str(claims_user.pk), "role": "authenticated"})
        try:
            return await hub._read_rows({str(owner.pk): (claims, {str(generation.pk)})})
        finally:
            await hub._reader.close()

    assert list(asyncio.run(read(alice, alice))) == [str(generation.pk)]
    assert asyncio.run(read(bob, alice)) == {}


def test_old_events_are_pruned(alice, settings):
    from generations.tasks import prune_generation_events

    make(alice)
    kept = make(alice)
    old = GenerationEvent.objects.order_by("id").first()
    GenerationEvent.objects.filter(pk=old.pk).update(
        created_at=old.created_at - timedelta(hours=settings.EVENTS_RETENTION_HOURS, minutes=1)
    )
    assert prune_generation_events(int(time.time())) == 1
    assert list(GenerationEvent.objects.values_list("generation_id", flat=True)) == [kept.pk]


# --- the stream -----------------------------------------------------------------------


def test_owner_sees_pending_processing_completed_and_nobody_else_does(server, catalog, alice, bob):
    mine, theirs = Stream(server.url, auth(alice)), Stream(server.url, auth(bob))
    try:
        assert mine.headers["content-type"].startswith("text/event-stream")
        generation = run_generation(alice)
        seen = status_events(mine, 3)
        assert [(e["id"], e["status"]) for e in seen] == [
            (str(generation.pk), s) for s in ("pending", "processing", "completed")
        ]
        assert seen[0]["event_id"] < seen[1]["event_id"] < seen[2]["event_id"]
        assert seen[0]["outputs"] == seen[1]["outputs"] == []
        [output] = seen[2]["outputs"]
        assert output["url"].startswith(f"http://127.0.0.1:{server.port}/media/generations/x/0.png?expires=")
        assert seen[2]["prompt"] == "a lighthouse at dusk" and seen[2]["credits_charged"] == 25
        # Bob's stream got nothing of it: the first event it sees is his own, made after.
        own = make(bob)
        [first] = status_events(theirs, 1)
        assert (first["id"], first["status"]) == (str(own.pk), "pending")
        assert all(json.loads(m["data"])["id"] != str(generation.pk) for m in theirs.messages if "data" in m)
    finally:
        mine.close()
        theirs.close()


def test_a_generation_in_a_project_and_with_a_parent_is_streamed_as_the_api_shows_it(server, catalog, alice, api_as):
    # Its row holds UUIDs (project, parent) that plain json cannot write: the first
    # make run of the README's example (a project) sent nothing and logged a TypeError.
    project = api_as(alice).post("/api/v1/projects", {"name": "Noir shorts"}, format="json").json()["id"]
    first = make(alice)
    stream = Stream(server.url, auth(alice))
    try:
        child = make(alice, prompt="again, closer", project=Project.objects.get(pk=project), parent=first)
        [event] = status_events(stream, 1)
        assert (event["id"], event["project"], event["parent"]) == (str(child.pk), project, str(first.pk))
        shown = api_as(alice).get(f"/api/v1/generations/{child.pk}").json()
        assert {key: event[key] for key in shown if key != "event_id"} == shown
    finally:
        stream.close()


def test_last_event_id_resumes_with_what_was_missed(server, catalog, alice):
    generation = run_generation(alice)
    first, processing, completed = GenerationEvent.objects.filter(user=alice).order_by("id")
    stream = Stream(server.url, {**auth(alice), "Last-Event-ID": str(first.pk)})
    try:
        missed = status_events(stream, 2)
        assert [(e["event_id"], e["status"]) for e in missed] == [
            (processing.pk, "processing"),
            (completed.pk, "completed"),
        ]
        assert missed[1]["outputs"][0]["mime_type"] == "image/png"
        later = make(alice)  # then live
        [live] = status_events(stream, 1)
        assert (live["id"], live["status"]) == (str(later.pk), "pending")
    finally:
        stream.close()
    # EventSource's reconnect: ?last_event_id= in the URL does the same.
    stream = Stream(server.url, auth(alice), params={"last_event_id": str(processing.pk)})
    try:
        assert [(e["id"], e["status"]) for e in status_events(stream, 2)] == [
            (str(generation.pk), "completed"),
            (str(later.pk), "pending"),
        ]
    finally:
        stream.close()


def test_a_heartbeat_comment_keeps_the_stream_alive(server, catalog, alice):
    stream = Stream(server.url, auth(alice))
    try:
        started = time.monotonic()
        assert stream.next_message(timeout=HEARTBEAT * 10)["comments"] == ["keepalive"]
        assert stream.next_message(timeout=HEARTBEAT * 10)["comments"] == ["keepalive"]
        assert time.monotonic() - started >= HEARTBEAT  # not a flood
    finally:
        stream.close()


def test_bad_last_event_id_is_a_400(server, catalog, alice):
    stream = Stream(server.url, {**auth(alice), "Last-Event-ID": "yesterday"})
    assert stream.status_code == 400
    assert stream.body["errors"] == {"last_event_id": ["A whole number ≥ 0."]}


# --- authentication ---------------------------------------------------------------------


def test_without_credentials_or_with_a_bad_token_it_is_a_401(server, catalog, alice):
    stream = Stream(server.url)
    assert (stream.status_code, stream.body["code"]) == (401, "not_authenticated")
    stream = Stream(server.url, {"Authorization": "Bearer not.a.token"})
    assert (stream.status_code, stream.body["code"]) == (401, "token_not_valid")
    headers = auth(alice)
    Session.objects.filter(user=alice).delete()  # signed out
    stream = Stream(server.url, headers)
    assert (stream.status_code, stream.body["code"]) == (401, "session_not_found")


def test_stream_token_connects_once(server, catalog, alice, api_as):
    response = api_as(alice).post("/api/v1/generations/events/token")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["expires_in"] == settings.EVENTS_TOKEN_SECONDS
    assert body["url"] == f"/api/v1/generations/events?token={body['token']}"
    stream = Stream(server.url, params={"token": body["token"]})
    try:
        assert_live(stream, alice, times=2)
    finally:
        stream.close()
    again = Stream(server.url, params={"token": body["token"]})
    assert (again.status_code, again.body["code"]) == (401, "stream_token_used")


def test_stream_token_refusals(server, catalog, alice, api):
    session = Session.objects.create(user=alice)
    access, _ = access_token_for(alice, session)
    # An access token is not a stream token.
    stream = Stream(server.url, params={"token": access})
    assert (stream.status_code, stream.body["code"]) == (401, "stream_token_invalid")
    # Signed by the app for another purpose (another salt): not one either.
    other = signing.dumps({"sub": str(alice.pk), "sid": str(session.pk), "jti": "x"}, salt="velro.other")
    stream = Stream(server.url, params={"token": other})
    assert (stream.status_code, stream.body["code"]) == (401, "stream_token_invalid")

    # Expired: minted EVENTS_TOKEN_SECONDS + 1 ago.
    class Earlier(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - settings.EVENTS_TOKEN_SECONDS - 1)

    payload = {"sub": str(alice.pk), "sid": str(session.pk), "exp": None, "jti": uuid.uuid4().hex}
    expired = Earlier(salt=events.STREAM_TOKEN_SALT).sign_object(payload)
    stream = Stream(server.url, params={"token": expired})
    assert (stream.status_code, stream.body["code"]) == (401, "stream_token_expired")
    # Its session ended since it was issued.
    token = events.stream_token_issue(user_id=alice.pk, session_id=session.pk, access_exp=None)
    session.delete()
    stream = Stream(server.url, params={"token": token})
    assert (stream.status_code, stream.body["code"]) == (401, "session_not_found")
    # Asking for one needs a signed-in caller.
    assert api.post("/api/v1/generations/events/token").status_code == 401


def assert_closed(stream: Stream, reason: str) -> None:
    message = stream.next_event()
    assert message is not None and message["event"] == "close", stream.messages
    assert json.loads(message["data"]) == {"reason": reason}
    assert stream.next_message() is None  # and the response ends


def test_signing_out_ends_that_sessions_streams_within_a_heartbeat(server, catalog, alice, api):
    phone = Session.objects.create(user=alice)
    laptop = Session.objects.create(user=alice)
    phone_access, _ = access_token_for(alice, phone)
    on_phone = Stream(server.url, {"Authorization": f"Bearer {phone_access}"})
    on_laptop = Stream(server.url, {"Authorization": f"Bearer {access_token_for(alice, laptop)[0]}"})
    try:
        # The phone signs out through the API, as an app does: its stream ends at once
        # (a heartbeat, 0.3 s here), not when its access token would have expired.
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {phone_access}")
        assert api.post("/api/v1/auth/logout").status_code == 204
        assert_closed(on_phone, "signed_out")
        # The laptop's session is another one: its stream goes on.
        assert_live(on_laptop, alice, times=1)
    finally:
        on_phone.close()
        on_laptop.close()


def test_a_stream_opened_with_a_stream_token_ends_with_its_session(server, catalog, alice, api_as):
    token = api_as(alice).post("/api/v1/generations/events/token").json()["token"]
    stream = Stream(server.url, params={"token": token})
    try:
        assert_live(stream, alice, times=1)
        Session.objects.filter(user=alice).delete()  # every device ended (the admin, "global")
        assert_closed(stream, "signed_out")
    finally:
        stream.close()


def test_a_deactivated_persons_streams_end(server, catalog, alice, bob):
    streams = [Stream(server.url, auth(alice)), Stream(server.url, auth(bob))]
    try:
        type(alice).objects.filter(pk=alice.pk).update(is_active=False)
        assert_closed(streams[0], "signed_out")
        assert_live(streams[1], bob, times=1)  # nobody else's
    finally:
        for stream in streams:
            stream.close()


def metric(server: EventsServer, name: str, **labels) -> float:
    """A sample of the events process's own /metrics (open on loopback with DEBUG); 0
    while a labelled counter has not been counted yet."""
    body = httpx.get(server.url.replace("/api/v1/generations/events", "/metrics")).text
    return value(parse(body), name, **labels) or 0.0


def wait_for_metric(server: EventsServer, name: str, expected: float) -> None:
    wait_for(lambda: metric(server, name) == expected, timeout=WAIT, what=f"{name} to be {expected}")


def test_the_events_process_exports_its_open_streams_and_why_it_closed_them(server, catalog, alice, bob):
    wait_for_metric(server, "velro_event_streams", 0)  # the other tests' streams have ended
    signed_out = metric(server, "velro_event_streams_closed_total", reason="signed_out")
    streams = [Stream(server.url, auth(alice)), Stream(server.url, auth(bob))]
    try:
        wait_for_metric(server, "velro_event_streams", 2)
        streams[1].close()  # the client goes away
        wait_for_metric(server, "velro_event_streams", 1)
        Session.objects.filter(user=alice).delete()
        assert_closed(streams[0], "signed_out")
        wait_for_metric(server, "velro_event_streams", 0)
        assert metric(server, "velro_event_streams_closed_total", reason="signed_out") == signed_out + 1
    finally:
        for stream in streams:
            stream.close()


# --- serving ---------------------------------------------------------------------------


def test_under_wsgi_it_redirects_to_the_events_process_or_says_where(api_as, alice, settings):
    client = api_as(alice)
    response = client.get("/api/v1/generations/events?last_event_id=3")
    assert response.status_code == 421 and response.json()["code"] == "events_not_routed"
    settings.EVENTS_URL = "http://127.0.0.1:8001"
    response = client.get("/api/v1/generations/events?last_event_id=3")
    assert response.status_code == 307
    assert response["Location"] == "http://127.0.0.1:8001/api/v1/generations/events?last_event_id=3"


def test_shutdown_ends_open_streams_cleanly(django_db_setup, catalog, alice):
    own = EventsServer()
    try:
        stream = Stream(own.url, auth(alice))
        started = time.monotonic()
        own.process.send_signal(signal.SIGTERM)
        message = stream.next_event()
        assert (message["event"], json.loads(message["data"])) == ("close", {"reason": "server_shutdown"})
        assert stream.next_message() is None  # and the response ends
        # uvicorn exits by the signal it caught, re-raised once it has shut down; well
        # before its graceful timeout (5 s here), which would cut streams still open.
        assert own.process.wait(timeout=20) == -signal.SIGTERM
        assert time.monotonic() - started < 4
    finally:
        own.stop()


def test_a_lost_listen_connection_catches_up_from_the_table(server, catalog, alice, sql):
    make(alice)  # before the stream: not replayed by the catch-up (no Last-Event-ID)
    stream = Stream(server.url, auth(alice))
    try:
        # The hub's LISTEN connection goes away (a restart, a network cut): the change
        # made before it is back (it waits 0.5 s) notifies nobody, and arrives anyway.
        [[terminated]] = sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = 'LISTEN velro_generation_events'"
        )
        assert terminated == 1
        assert_live(stream, alice, times=2)
    finally:
        stream.close()


def test_a_client_going_away_frees_its_stream(catalog, alice):
    """The events app in this process (uvicorn in a thread), to look at its hub: a
    stream's subscription goes when its client disconnects."""
    import uvicorn

    from velro.asgi import application

    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    hub = None
    try:
        deadline = time.monotonic() + 30
        while not uvicorn_server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}/api/v1/generations/events"
        first, second = Stream(url, auth(alice)), Stream(url, auth(alice))
        hub = events._hub
        assert hub.stream_count() == 2 and set(hub.subscribers) == {str(alice.pk)}
        first.close()
        deadline = time.monotonic() + 10
        while hub.stream_count() != 1:
            assert time.monotonic() < deadline, "the closed stream is still subscribed"
            time.sleep(0.02)
        second.close()
        while hub.subscribers:
            assert time.monotonic() < deadline, "the closed stream is still subscribed"
            time.sleep(0.02)
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=30)
        if hub is not None and hub._reader is not None:
            hub._reader.pgconn.finish()  # its event loop has ended with the server's thread
        events._hub = None
