"""``make bench``, live generation status (issue 21): 500 concurrent Server-Sent Event
streams against ONE events process (``manage.py run_events``, uvicorn, production
settings), each of its own person, on a benchmark database of its own
(``<name>_bench_events_<pid>``, migrated, dropped afterwards).

1. **Connect**: every person opens ``GET /api/v1/generations/events`` with their access
   token, all at once (this process: one asyncio loop, httpx); each stream counts as
   connected at its first bytes (``: connected``).
2. **Idle**: the streams stay open past a heartbeat (``EVENTS_HEARTBEAT_SECONDS`` = 5 here):
   each must get its ``: keepalive``.
3. **Changes**: every person's pending generation goes to processing, then to completed,
   one committed UPDATE each (as the worker's conditional updates do), spread over
   about two seconds per round. Latency: from the commit returning here to the event's
   arrival on its owner's stream (one clock, this process).
4. **Still connected**: no stream ended; no stream received another person's event.

Targets (enforced in full and smoke runs): every stream connected and still connected at
the end; every change delivered to its owner, to nobody else; p95 latency < 1 s (max
reported). ``--smoke``: 20 streams, a 1 s heartbeat.

File descriptors: this process holds one socket per stream (and the server one per
client), so the soft ``RLIMIT_NOFILE`` is raised to the hard limit first (the events
process inherits it); a limit below what the run needs is reported as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import psycopg
from django.conf import settings

from bench.part import BenchPart
from bench.runner import Target, child_database_env, connection_kwargs, free_port, on_database, percentile
from velro import jwt_keys

P95_GOAL_S = 1.0
# The worker's two conditional updates, one committed statement each.
CHANGES = (
    (
        "processing",
        "UPDATE public.generations SET status = 'processing', started_at = now() WHERE id = %s AND status = 'pending'",
    ),
    (
        "completed",
        "UPDATE public.generations SET status = 'completed', completed_at = now() "
        "WHERE id = %s AND status = 'processing'",
    ),
)


@dataclass(frozen=True)
class Plan:
    streams: int
    heartbeat_s: float
    spread_s: float  # each round of changes is spread over this long


FULL = Plan(500, 5.0, 2.0)
SMOKE = Plan(20, 1.0, 0.5)


@dataclass
class StreamState:
    person: str
    generation: str
    connected_at: float | None = None
    ended: bool = False
    keepalives: int = 0
    received: dict = field(default_factory=dict)  # status -> monotonic time
    foreign: int = 0  # events of another person's generation (must stay 0)
    error: str = ""


class EventsBench(BenchPart):
    label = targets_name = "events"
    full_plan, smoke_plan = FULL, SMOKE

    def run(self) -> int:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per stream otherwise
        limit = raise_fd_limit()
        self.say(f"{self.plan.streams} streams against one events process (open files: {limit})")
        self.create_database()
        server = None
        try:
            people = self.people()
            server = self.start_server()
            measured = asyncio.run(self.measure(server, people))
        finally:
            if server is not None:
                stop(server)
            self.drop_database()
        measured["fd_limit"] = limit
        return self.report(measured)

    # -- setup -------------------------------------------------------------------------

    def people(self) -> list[tuple[str, str, str]]:
        """(person id, access token, their pending generation id) for every stream."""
        from accounts.models import Session, User
        from accounts.sessions import access_token_for
        from generations import services
        from generations.models import AIModel

        with on_database(self.db):
            model = AIModel.objects.filter(is_active=True).order_by("credits_cost").first()
            found = []
            for n in range(self.plan.streams):
                # No password (no hashing: ~0.3 s each); a session and its token instead.
                person = User.objects.create_user(email=f"events-{n}@bench.velro.local", password=None)
                access, _ = access_token_for(person, Session.objects.create(user=person))
                generation = services.generation_create(user=person, ai_model=model, prompt=f"stream {n}")
                found.append((str(person.pk), access, str(generation.pk)))
        self.say(f"{len(found)} people, each with a session and a pending generation")
        return found

    def env(self) -> dict:
        keys = jwt_keys.key_set()
        return {
            **child_database_env(self.db),
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_ALGORITHM": keys.algorithm,
            "JWT_SIGNING_KEYS": keys.source,
            "JWT_SIGNING_KEYS_FILE": "",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            "EVENTS_HEARTBEAT_SECONDS": str(self.plan.heartbeat_s),
            "MEDIA_ROOT": str(self.workdir / "media"),
        }

    def start_server(self) -> subprocess.Popen:
        port = free_port()
        log = open(self.workdir / "events.log", "wb")  # noqa: SIM115 - the child holds it
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_events", "--host", "127.0.0.1", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env={**os.environ, **self.env()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.url = f"http://127.0.0.1:{port}/api/v1/generations/events"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"run_events exited: see {self.workdir / 'events.log'}")
            try:
                httpx.get(process.url, timeout=1)  # 401: up
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("run_events did not start") from None
                time.sleep(0.1)
        self.say(f"events process up at {process.url} (log: {self.workdir / 'events.log'})")
        return process

    # -- the measurement ---------------------------------------------------------------

    async def measure(self, server, people) -> dict:
        states = {gen: StreamState(person=pid, generation=gen) for pid, _, gen in people}
        connected = asyncio.Event()
        count = {"connected": 0}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        timeout = httpx.Timeout(60.0, read=None)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            tasks = [
                asyncio.create_task(self.listen(client, server.url, token, states[gen], count, connected, len(people)))
                for _, token, gen in people
            ]
            start = time.monotonic()
            try:
                await asyncio.wait_for(connected.wait(), 60)
            except TimeoutError:
                pass
            connect_s = time.monotonic() - start
            self.say(f"{count['connected']}/{len(people)} connected in {connect_s:.2f} s; idle past a heartbeat")
            await asyncio.sleep(self.plan.heartbeat_s * 1.5)
            commits: dict[tuple[str, str], float] = {}
            async with await psycopg.AsyncConnection.connect(**connection_kwargs(self.db), autocommit=True) as conn:
                for status, statement in CHANGES:
                    gap = self.plan.spread_s / len(people)
                    for _, _, gen in people:
                        await conn.execute(statement, [gen])
                        commits[(gen, status)] = time.monotonic()
                        await asyncio.sleep(gap)
                    self.say(f"{len(people)} generations → {status}")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(len(s.received) == 2 for s in states.values()):
                await asyncio.sleep(0.05)
            still_open = sum(1 for s in states.values() if s.connected_at is not None and not s.ended)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        latencies = [
            state.received[status] - commits[(gen, status)]
            for gen, state in states.items()
            for status in ("processing", "completed")
            if status in state.received
        ]
        errors = sorted({s.error for s in states.values() if s.error})[:5]
        return {
            "streams": len(people),
            "connected": count["connected"],
            "connect_seconds": round(connect_s, 2),
            "still_connected": still_open,
            "with_keepalive": sum(1 for s in states.values() if s.keepalives > 0),
            "changes": len(commits),
            "delivered": len(latencies),
            "foreign_events": sum(s.foreign for s in states.values()),
            "p50_s": round(percentile(latencies, 50), 4),
            "p95_s": round(percentile(latencies, 95), 4),
            "max_s": round(max(latencies), 4) if latencies else None,
            "errors": errors,
        }

    async def listen(self, client, url, token, state: StreamState, count, connected, total) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    state.error = f"HTTP {response.status_code}"
                    return
                event: dict = {}
                async for line in response.aiter_lines():
                    if line == "":
                        if event.get("event") == "generation":
                            data = json.loads(event["data"])
                            if data["id"] != state.generation:
                                state.foreign += 1
                            else:
                                state.received.setdefault(data["status"], time.monotonic())
                        event = {}
                    elif line == ": connected":
                        state.connected_at = time.monotonic()
                        count["connected"] += 1
                        if count["connected"] == total:
                            connected.set()
                    elif line == ": keepalive":
                        state.keepalives += 1
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        event[name] = value.removeprefix(" ")
            state.ended = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported, not raised: one failed stream fails a target
            state.error = f"{type(exc).__name__}: {exc}"
            state.ended = True

    # -- the report --------------------------------------------------------------------

    def targets(self, m: dict) -> list[Target]:
        n = m["streams"]
        return [
            Target(
                "events_connected",
                f"{n} streams connected, and still connected after the changes",
                f"{n}/{n}",
                f"{m['connected']}/{n} connected, {m['still_connected']}/{n} still",
                m["connected"] == n and m["still_connected"] == n,
                detail=f"connected in {m['connect_seconds']} s; open files {m['fd_limit']}"
                + (f"; errors: {m['errors']}" if m["errors"] else ""),
            ),
            Target(
                "events_heartbeat",
                f"every stream got a keepalive while idle ({self.plan.heartbeat_s:g} s heartbeat)",
                f"{n}/{n}",
                f"{m['with_keepalive']}/{n}",
                m["with_keepalive"] == n,
            ),
            Target(
                "events_delivered",
                "every status change reached its owner's stream, and no other",
                f"{m['changes']}/{m['changes']}, 0 foreign",
                f"{m['delivered']}/{m['changes']}, {m['foreign_events']} foreign",
                m["delivered"] == m["changes"] and m["foreign_events"] == 0,
            ),
            Target(
                "events_latency_p95",
                "commit → event on the owner's stream, p95",
                f"< {P95_GOAL_S:g} s",
                f"p95 {m['p95_s']} s (p50 {m['p50_s']} s, max {m['max_s']} s)",
                m["p95_s"] == m["p95_s"] and m["p95_s"] < P95_GOAL_S,  # NaN: nothing delivered
            ),
        ]

    def report(self, measured: dict) -> int:
        return self.report_targets(
            f"Live generation status ({measured['streams']} SSE streams, one events process):",
            self.targets(measured),
            {"measured": measured},
        )


def raise_fd_limit() -> int:
    """The soft limit of open files raised to the hard one (a stream is a socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
