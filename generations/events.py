"""Live generation status: what ``GET generations/events`` streams, and how.

The database announces every status change (generations 0019: a ``generation_events``
row and a NOTIFY on ``velro_generation_events`` with the event id, owner, generation and
status). One :class:`EventHub` per process of the events server (``manage.py
run_events``, uvicorn) holds the only two database connections the streams use:

* a LISTEN connection: every notification of the channel arrives once per process;
* a reader connection: for each batch of notifications, the hub reads the changed rows
  **as their owner** — ``role authenticated`` and the owner's claims, one short
  transaction — so the same RLS policies as any API request decide what a stream may
  see; the owner from the payload only picks whose streams get the result.

Each stream is a :class:`Subscription` (an asyncio queue) registered under its person's
id; nothing is read for a person with no stream open. A stream never holds a database
connection or a thread: 500 streams are 500 queues.

Resume: the SSE id is the event's id, and ``Last-Event-ID`` (or ``?last_event_id=``)
reads the person's events after it from ``generation_events`` (kept
``EVENTS_RETENTION_HOURS``), then the stream goes live; ids already sent are not sent
twice. If the LISTEN connection is lost, the hub reconnects (backing off) and every
stream catches up from the table the same way, so nothing committed meanwhile is lost.

Signed out: every heartbeat the hub asks, in one query, which of its streams' sessions
still exist (and their person is active); a stream whose session has ended gets
``event: close`` with ``"reason": "signed_out"`` and ends.

SQL strings live here, not in a migration or the ORM: Django's ORM has no async
connection of its own (its async API runs the sync ORM in one thread), and these reads
run on the hub's own async psycopg connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.core import signing
from django.db import connection as django_connection
from psycopg.rows import dict_row
from rest_framework.utils.encoders import JSONEncoder

from generations.serializers import GenerationSerializer
from velro.metrics import EVENT_STREAMS

log = logging.getLogger(__name__)

CHANNEL = "velro_generation_events"
BACKLOG_LIMIT = 1000  # events replayed at most on a resume (older ones: GET generations)
BATCH_LIMIT = 1000  # notifications read together

_COLUMNS = ", ".join(f"g.{column}" for column in GenerationSerializer.columns)
# The changed rows, as their owner (RLS filters them again underneath the owner filter).
_READ_ROWS = f"SELECT {_COLUMNS} FROM public.generations AS g WHERE g.id = ANY(%s) AND g.user_id = %s"
# A person's events after an id, with the generation as it is now (resume and catch-up).
_READ_BACKLOG = f"""
SELECT e.id AS event_id, e.status AS event_status, {_COLUMNS}
  FROM public.generation_events AS e
  JOIN public.generations AS g ON g.id = e.generation_id
 WHERE e.user_id = %s AND e.id > %s
 ORDER BY e.id
 LIMIT {BACKLOG_LIMIT}
"""
# Where a stream opened without Last-Event-ID starts (a catch-up replays nothing older).
_READ_LATEST = "SELECT coalesce(max(id), 0) AS latest FROM public.generation_events WHERE user_id = %s"
_SWITCH = "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)"
# Which of the open streams' sessions are still signed in (a person deactivated, banned or
# deleted has none: deactivation is checked here, the others delete the sessions).
_READ_LIVE_SESSIONS = """
SELECT s.id::text AS session_id, s.user_id::text AS user_id
  FROM auth.sessions AS s
  JOIN auth.users AS u ON u.id = s.user_id
 WHERE s.id = ANY(%s) AND u.is_active
"""


@dataclass(frozen=True)
class Event:
    """One status change as the stream sends it: the event id, the status it changed to,
    and the generation's row as its owner read it (a dict of GenerationSerializer's columns)."""

    id: int
    status: str
    row: dict


RESYNC = object()  # queued when the hub may have missed notifications: catch up from the table
CLOSE = object()  # queued when the server shuts down: end the stream
SIGNED_OUT = object()  # queued when the stream's session has ended: end the stream


@dataclass(eq=False)
class Subscription:
    """One open stream: its person, their claims for RLS, the session it was opened in
    (None: not watched), and its queue."""

    user_id: str
    claims: str
    session_id: str | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    signed_out: bool = False


def connection_params() -> dict:
    """psycopg connection parameters of the default database (Django's own, less the
    sync connection's cursor class and adapters)."""
    params = dict(django_connection.get_connection_params())
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    return params


class EventHub:
    """One per process (:func:`hub`): the LISTEN connection, the reader connection, and
    the open streams by person."""

    def __init__(self):
        self.subscribers: dict[str, set[Subscription]] = {}
        self._listening = asyncio.Event()
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._reader: psycopg.AsyncConnection | None = None
        self._reader_lock = asyncio.Lock()
        self._closing = False

    # --- streams --------------------------------------------------------------------
    async def subscribe(self, user_id: str, claims: dict, session_id: str | None = None) -> Subscription:
        """Register a stream; returns once the hub is LISTENing, so every change
        committed from now on reaches the stream's queue."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen()),
                asyncio.create_task(self._dispatch()),
                asyncio.create_task(self._watch_sessions()),
            ]
        subscription = Subscription(
            user_id=str(user_id), claims=json.dumps(claims), session_id=str(session_id) if session_id else None
        )
        self.subscribers.setdefault(subscription.user_id, set()).add(subscription)
        EVENT_STREAMS.inc()
        await self._listening.wait()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        streams = self.subscribers.get(subscription.user_id)
        if streams is not None and subscription in streams:
            streams.discard(subscription)
            EVENT_STREAMS.dec()
            if not streams:
                del self.subscribers[subscription.user_id]

    def stream_count(self) -> int:
        return sum(len(streams) for streams in self.subscribers.values())

    def close_all(self) -> None:
        """Server shutdown: every stream ends (its client reconnects elsewhere)."""
        self._closing = True
        for streams in self.subscribers.values():
            for subscription in streams:
                subscription.queue.put_nowait(CLOSE)

    # --- reads as the owner ---------------------------------------------------------
    async def _reader_connection(self) -> psycopg.AsyncConnection:
        if self._reader is None or self._reader.closed or self._reader.broken:
            self._reader = await psycopg.AsyncConnection.connect(**connection_params(), row_factory=dict_row)
            await self._reader.execute("SET TIME ZONE 'UTC'")
            await self._reader.commit()
        return self._reader

    async def backlog(self, subscription: Subscription, after: int) -> list[Event]:
        """The person's events after ``after``, oldest first, read as them under RLS."""
        async with self._reader_lock:
            conn = await self._reader_connection()
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(_SWITCH, [subscription.claims])
                await cursor.execute(_READ_BACKLOG, [subscription.user_id, after])
                rows = await cursor.fetchall()
        events = []
        for row in rows:
            event_id, status = row.pop("event_id"), row.pop("event_status")
            events.append(Event(id=event_id, status=status, row=row))
        return events

    async def latest_event_id(self, subscription: Subscription) -> int:
        """The person's newest event id (0: none), read as them under RLS."""
        async with self._reader_lock:
            conn = await self._reader_connection()
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(_SWITCH, [subscription.claims])
                await cursor.execute(_READ_LATEST, [subscription.user_id])
                return (await cursor.fetchone())["latest"]

    async def _read_rows(self, wanted: dict[str, tuple[str, set[str]]]) -> dict[str, dict]:
        """``{user_id: (claims, generation ids)}`` → ``{generation id: row}``: each
        person's rows read with their role and claims, all in one short transaction."""
        found: dict[str, dict] = {}
        async with self._reader_lock:
            conn = await self._reader_connection()
            async with conn.transaction(), conn.cursor() as cursor:
                for user_id, (claims, ids) in wanted.items():
                    await cursor.execute(_SWITCH, [claims])
                    await cursor.execute(_READ_ROWS, [[uuid.UUID(i) for i in ids], user_id])
                    for row in await cursor.fetchall():
                        found[str(row["id"])] = row
        return found

    # --- signed out -----------------------------------------------------------------
    async def _watch_sessions(self) -> None:
        """Every heartbeat, one query for all of this process's streams: a stream whose
        session has ended (signed out, ended from another device or the admin, the person
        deactivated, banned or deleted) is closed — as the rest of the API refuses that
        session's access tokens at once, not when they expire."""
        while True:
            await asyncio.sleep(settings.EVENTS_HEARTBEAT_SECONDS)
            try:
                await self.close_signed_out()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the next round asks again
                log.warning("generation events: could not check the streams' sessions (%s)", exc)

    async def close_signed_out(self) -> int:
        """Queue SIGNED_OUT for every watched stream whose session is no longer live;
        returns how many."""
        watched = [
            subscription
            for streams in list(self.subscribers.values())
            for subscription in streams
            if subscription.session_id and not subscription.signed_out
        ]
        if not watched:
            return 0
        async with self._reader_lock:
            conn = await self._reader_connection()
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(
                    _READ_LIVE_SESSIONS, [list({uuid.UUID(subscription.session_id) for subscription in watched})]
                )
                live = {(row["session_id"], row["user_id"]) for row in await cursor.fetchall()}
        ended = [s for s in watched if (s.session_id, s.user_id) not in live]
        for subscription in ended:
            subscription.signed_out = True
            subscription.queue.put_nowait(SIGNED_OUT)
        return len(ended)

    # --- the LISTEN side ------------------------------------------------------------
    async def _listen(self) -> None:
        delay = 0.5
        first = True
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**connection_params(), autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if not first:
                        # Notifications sent while no connection listened are lost: every
                        # stream catches up from generation_events.
                        for streams in list(self.subscribers.values()):
                            for subscription in streams:
                                subscription.queue.put_nowait(RESYNC)
                    first, delay = False, 0.5
                    async for notify in conn.notifies():
                        self._inbox.put_nowait(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted, a network cut …
                self._listening.clear()
                log.warning("generation events: LISTEN connection lost (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                if not self.subscribers:
                    first = True  # nobody to catch up

    async def _dispatch(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < BATCH_LIMIT and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            try:
                await self._deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("generation events: a batch could not be read; streams catch up from the table")
                for streams in list(self.subscribers.values()):
                    for subscription in streams:
                        subscription.queue.put_nowait(RESYNC)

    async def _deliver(self, payloads: list[str]) -> None:
        notes = []
        wanted: dict[str, tuple[str, set[str]]] = {}
        for payload in payloads:
            note = json.loads(payload)
            streams = self.subscribers.get(note["user_id"])
            if not streams:
                continue  # nobody of this person is listening here: nothing to read
            notes.append(note)
            claims = next(iter(streams)).claims
            wanted.setdefault(note["user_id"], (claims, set()))[1].add(note["generation_id"])
        if not notes:
            return
        rows = await self._read_rows(wanted)
        for note in notes:
            row = rows.get(note["generation_id"])
            if row is None:
                continue  # deleted since (or, were the payload wrong, not theirs: RLS hid it)
            event = Event(id=note["id"], status=note["status"], row=row)
            for subscription in list(self.subscribers.get(note["user_id"], ())):
                subscription.queue.put_nowait(event)


_hub: EventHub | None = None


def hub() -> EventHub:
    """This process's hub (made on first use, in the running event loop)."""
    global _hub
    if _hub is None:
        _hub = EventHub()
    return _hub


def close_streams() -> None:
    """Server shutdown: end every stream of this process (if any was opened)."""
    if _hub is not None:
        _hub.close_all()


# --- the stream's text ------------------------------------------------------------------
def render_event(event: Event, serializer: GenerationSerializer) -> str:
    """One SSE message: ``id`` (the event id), ``event: generation``, and the generation
    as ``GET generations/{id}`` shows it, with the status it changed to; outputs (signed
    links) in ``completed`` events only."""
    data = serializer.to_representation(event.row)
    data["status"] = event.status
    if event.status != "completed":
        data["outputs"] = []
    # DRF's encoder, as the API's JSON renderer uses: the row's UUIDs (project, parent,
    # style stack, preset) and dates come out as GET generations/{id} shows them.
    body = json.dumps(data, cls=JSONEncoder, separators=(",", ":"))
    return f"id: {event.id}\nevent: generation\ndata: {body}\n\n"


# --- stream tokens (browsers' EventSource cannot send an Authorization header) ----------
STREAM_TOKEN_SALT = "velro.generations.events.stream-token"


def stream_token_issue(*, user_id, session_id, access_exp: int | None) -> str:
    """A token for one connect to ``generations/events?token=``: signed with SECRET_KEY
    under this stream's own salt (an access token, or any other signed value of the app,
    is not one), valid ``EVENTS_TOKEN_SECONDS`` and used once (generations.event_views).
    It carries the access token's session and expiry: the stream ends when that token
    would have."""
    payload = {"sub": str(user_id), "sid": str(session_id) if session_id else None, "exp": access_exp}
    payload["jti"] = secrets.token_urlsafe(16)
    return signing.dumps(payload, salt=STREAM_TOKEN_SALT, compress=False)


def stream_token_read(token: str) -> dict:
    """The payload; ``signing.SignatureExpired`` / ``signing.BadSignature`` otherwise."""
    return signing.loads(token, salt=STREAM_TOKEN_SALT, max_age=settings.EVENTS_TOKEN_SECONDS)


def seconds_left(exp: int | None) -> float | None:
    return None if exp is None else max(exp - time.time(), 0.0)


@contextlib.asynccontextmanager
async def subscribed(user_id: str, claims: dict, session_id: str | None = None):
    """A subscription for the block; unsubscribed however the block ends (the client
    went away, the server shuts down, the token expired, the session ended)."""
    current = hub()
    subscription = await current.subscribe(user_id, claims, session_id)
    try:
        yield current, subscription
    finally:
        current.unsubscribe(subscription)
