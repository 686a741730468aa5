"""The generation worker: the generations table is the queue.

Claims pending rows with FOR UPDATE SKIP LOCKED (any number of workers on any number of
machines). A provider that runs here (local) runs outside any transaction; its outputs are
copied into our storage (generations/outputs.py: a bad or missing output fails and refunds
it) and the result recorded with a conditional update. A provider with a queue of its own
(fal) is submitted to and released: the worker keeps up to GENERATION_MAX_IN_FLIGHT of those
in flight at once and finishes each when its webhook or a poll brings the result
(generations/inflight.py). Every ``--sweep-every`` seconds it fails and refunds rows
stuck in processing past GENERATION_PROCESSING_TIMEOUT (a worker that died mid-run).
SIGTERM/SIGINT: finish the current item, then exit.

The database may go away at any moment (a restart, an outage, a terminated backend): the
worker then closes its connection and tries again with exponential backoff (0.5 s
doubling to 30 s, reset after a success), saying so on stderr with the attempt count,
for as long as it takes. A provider result obtained meanwhile is kept and recording it
is retried the same way; only a worker told to stop gives up on it (and says so: the
row stays processing until the sweep fails and refunds it). SIGTERM ends any wait at once.

Every ``--heartbeat-every`` seconds the worker writes its row of worker_heartbeats (alive
now, its last claim): /metrics reads them for the "no worker heartbeat" alert. A clean
stop deletes the row.
"""

import os
import signal
import socket
import time

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from generations import services
from generations.inflight import InFlight
from generations.outputs import delete_quietly, store_outputs, stored_paths
from generations.providers import ProviderError, get_provider

# What a database that went away looks like: refused or lost connections, a server
# shutting down or starting up, a terminated backend (Django's wrapped errors, and
# psycopg's own should any reach us unwrapped).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
RETRY_FIRST_DELAY = 0.5  # seconds before the second attempt
RETRY_MAX_DELAY = 30.0
# Without a connect timeout, connecting to an unreachable host blocks for minutes (and
# so would a SIGTERM); a DATABASE_URL that sets one keeps its own.
CONNECT_TIMEOUT = 10
WAIT_SLICE = 0.1  # a wait checks for SIGTERM this often
IN_FLIGHT_TICK = 0.1  # seconds between looks at the in-flight requests when there is nothing new

_GAVE_UP = object()


class Backoff:
    """Exponential delays: ``first``, doubling up to ``maximum``; ``reset()`` after a success."""

    def __init__(self, first: float = RETRY_FIRST_DELAY, maximum: float = RETRY_MAX_DELAY):
        self.first, self.maximum = first, maximum
        self.attempts = 0

    def next_delay(self) -> float:
        """Count a failed attempt; the seconds to wait before the next one."""
        self.attempts += 1
        return min(self.first * 2 ** min(self.attempts - 1, 32), self.maximum)

    def reset(self):
        self.attempts = 0


class Command(BaseCommand):
    help = "Process pending generations until stopped (SIGTERM finishes the current one)."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stopping = False
        self.backoff = Backoff()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = timezone.now()
        self.last_claim_at = None
        self.claims = 0
        self.heartbeat_every = 10.0
        self.next_heartbeat = 0.0
        self.forgot_stale = False

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Process what is pending now, then exit.")
        parser.add_argument("--max-items", type=int, default=0, help="Exit after this many items (0: no limit).")
        parser.add_argument("--idle-sleep", type=float, default=1.0, help="Seconds to wait when the queue is empty.")
        parser.add_argument("--sweep-every", type=float, default=60.0, help="Seconds between sweeps of stuck rows.")
        parser.add_argument(
            "--heartbeat-every", type=float, default=10.0, help="Seconds between heartbeats (worker_heartbeats)."
        )

    def handle(self, *args, once, max_items, idle_sleep, sweep_every, heartbeat_every=10.0, **options):
        self.stopping = False
        self.heartbeat_every = heartbeat_every
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        connection.settings_dict.setdefault("OPTIONS", {}).setdefault("connect_timeout", CONNECT_TIMEOUT)
        try:
            processed = self.work(once=once, max_items=max_items, idle_sleep=idle_sleep, sweep_every=sweep_every)
        finally:
            for sig, handler in previous.items():  # run in-process (call_command): give them back
                if handler is not None:
                    signal.signal(sig, handler)
        self.stdout.write(f"worker stopped after {processed} item(s)")

    def work(self, *, once, max_items, idle_sleep, sweep_every) -> int:
        self.stdout.write(
            f"worker started (sweep every {sweep_every:g} s, up to {settings.GENERATION_MAX_IN_FLIGHT} "
            f"provider requests in flight, webhooks {'on' if settings.PUBLIC_BASE_URL else 'off: polling'})"
        )
        inflight = InFlight(out=self.stdout.write)
        try:
            return self._work(inflight, once=once, max_items=max_items, idle_sleep=idle_sleep, sweep_every=sweep_every)
        finally:
            inflight.close()
            self.forget_heartbeat()

    def _work(self, inflight, *, once, max_items, idle_sleep, sweep_every) -> int:
        processed, last_sweep = 0, 0.0
        while not self.stopping:
            generation = None
            try:
                if not connection.in_atomic_block:  # (tests run the worker inside one)
                    close_old_connections()
                if time.monotonic() - last_sweep >= sweep_every:
                    swept = services.generation_sweep()
                    if swept:
                        self.stdout.write(self.style.WARNING(f"sweep: failed and refunded {swept} stuck generation(s)"))
                    last_sweep = time.monotonic()
                did = inflight.step()
                full = max_items and processed >= max_items
                if inflight.capacity() > 0 and not full:
                    generation = self.claimed(services.generation_claim_next())
                self.heartbeat()
            except DATABASE_UNAVAILABLE as exc:
                if connection.in_atomic_block:  # an outer transaction cannot outlive its connection
                    raise
                self.database_unavailable(exc)
                continue
            self.database_available()
            if generation is None:
                if inflight.busy():
                    if not did:
                        self._wait(IN_FLIGHT_TICK)
                    continue
                if once or (max_items and processed >= max_items):
                    break
                self._wait(idle_sleep)
                continue
            processed += 1
            provider = self.provider_of(generation)
            if provider is not None and getattr(provider, "releases", False):
                # Submit and release (generations/inflight.py): the worker moves on at once,
                # and takes the next pending ones while it has room (a burst of hundreds).
                self.record("hand-over", inflight.hand_over, generation=generation, provider=provider.name)
                processed += self.hand_over_more(inflight, max_items - processed if max_items else None)
                continue
            self.process(generation, provider)
        return processed

    def hand_over_more(self, inflight, limit) -> int:
        """Claim and hand over pending generations while they go to a provider that
        releases and there is room; a generation for another provider is processed here."""
        taken = 0
        while not self.stopping and inflight.capacity() > 0 and (limit is None or taken < limit):
            try:
                if taken and taken % 50 == 0:
                    inflight.step()  # results that came in meanwhile are recorded too
                generation = services.generation_claim_next()
            except DATABASE_UNAVAILABLE:
                if connection.in_atomic_block:
                    raise
                return taken  # the main loop says so and backs off
            if generation is None:
                return taken
            self.claimed(generation)
            taken += 1
            provider = self.provider_of(generation)
            if provider is None or not getattr(provider, "releases", False):
                self.process(generation, provider)
                return taken
            self.record("hand-over", inflight.hand_over, generation=generation, provider=provider.name)
        return taken

    def claimed(self, generation):
        """Note a claim for the next heartbeat; returns ``generation``."""
        if generation is not None:
            self.last_claim_at = timezone.now()
            self.claims += 1
        return generation

    def heartbeat(self, *, force: bool = False):
        """Write this worker's heartbeat row when it is due (every --heartbeat-every
        seconds). Database errors propagate to the loop, which backs off."""
        now = time.monotonic()
        if not force and now < self.next_heartbeat:
            return
        self.next_heartbeat = now + self.heartbeat_every
        try:
            if not self.forgot_stale:
                services.worker_heartbeats_forget()
                self.forgot_stale = True
            services.worker_heartbeat(
                worker=self.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                started_at=self.started_at,
                last_claim_at=self.last_claim_at,
                claims=self.claims,
            )
        except DATABASE_UNAVAILABLE:
            raise
        except DatabaseError as exc:
            # Any other failure (worker_heartbeats not migrated yet, during a deploy) must
            # not stop the work: say so, and try again at the next beat.
            if connection.in_atomic_block:
                raise
            self.stderr.write(f"heartbeat not written: {' '.join(str(exc).split())}")

    def forget_heartbeat(self):
        """A clean stop: this worker's row goes (a database that is down keeps it, and the
        metrics show its heartbeat ageing, as for a worker that died)."""
        try:
            services.worker_heartbeats_forget(worker=self.worker_id)
        except DATABASE_UNAVAILABLE as exc:
            if connection.in_atomic_block:
                raise
            self.stderr.write(f"heartbeat row not removed (database unavailable): {exc}")

    def provider_of(self, generation):
        try:
            return get_provider(generation.ai_model)
        except ProviderError:
            return None  # process() fails it with the reason

    def process(self, generation, provider=None):
        started = time.monotonic()
        self.stdout.write(f"{generation.pk} {generation.ai_model_id}: processing (attempt {generation.attempts})")
        try:
            result = (provider or get_provider(generation.ai_model)).run(generation)
            # Into our storage before it completes: no row ever points at a provider's CDN.
            outputs = store_outputs(generation, result.outputs)
        except ProviderError as exc:
            recorded = self.record(
                f"failure: {exc} (provider request {exc.provider_request_id or '-'})",
                services.generation_fail,
                generation=generation,
                error=str(exc),
                from_statuses=["processing"],
                provider_request_id=exc.provider_request_id,
            )
            if recorded is not _GAVE_UP:
                self.stdout.write(self.style.ERROR(f"{generation.pk}: failed and refunded: {exc}"))
            return
        except Exception as exc:  # a bug in a provider must not kill the worker or keep the credits
            self.stderr.write(f"{generation.pk}: provider crashed: {exc!r}")
            self.record(
                f"failure: provider crashed: {exc!r}",
                services.generation_fail,
                generation=generation,
                error=f"Internal error: {type(exc).__name__}",
                from_statuses=["processing"],
            )
            return
        recorded = self.record(
            f"outputs {outputs!r} (provider request {result.provider_request_id or '-'})",
            services.generation_complete,
            generation=generation,
            outputs=outputs,
            provider_request_id=result.provider_request_id,
        )
        if recorded is _GAVE_UP:
            return  # the files stay for whoever records it; media_gc finds them if nobody does
        if recorded:
            elapsed = time.monotonic() - started
            self.stdout.write(self.style.SUCCESS(f"{generation.pk}: completed in {elapsed:.2f} s"))
        else:
            delete_quietly(stored_paths(outputs))
            self.stdout.write(f"{generation.pk}: finished elsewhere meanwhile (cancelled or swept); result dropped")

    def record(self, what: str, service, *, generation, **kwargs):
        """``service(generation=generation, **kwargs)`` (recording a provider's result),
        retried with backoff while the database is unavailable: its transitions are
        conditional, so a retry never records twice. ``_GAVE_UP`` once the worker is
        stopping: ``what`` (the result) then goes to stderr, and the row stays processing
        until the sweep fails and refunds it."""
        while True:
            try:
                recorded = service(generation=generation, **kwargs)
            except DATABASE_UNAVAILABLE as exc:
                if connection.in_atomic_block:
                    raise
                if not self.stopping:
                    self.database_unavailable(exc)
                if self.stopping:
                    self.stderr.write(
                        f"{generation.pk}: result not recorded (database unavailable and the worker is stopping; "
                        f"the sweep will fail and refund it): {what}"
                    )
                    return _GAVE_UP
                continue
            self.database_available()
            return recorded

    def database_unavailable(self, exc: Exception):
        """Say so, drop the connection, wait the next backoff delay (or until SIGTERM)."""
        delay = self.backoff.next_delay()
        message = " ".join(str(exc).split()) or type(exc).__name__
        self.stderr.write(
            f"database unavailable (attempt {self.backoff.attempts}): {message}; retrying in {delay:.1f} s"
        )
        try:
            connection.close()  # the next query connects again
        except (DatabaseError, psycopg.Error):
            pass
        self._wait(delay)

    def database_available(self):
        if self.backoff.attempts:
            self.stdout.write(f"database available again after {self.backoff.attempts} failed attempt(s)")
            self.backoff.reset()

    def _wait(self, seconds: float):
        """Sleep ``seconds``, but wake up at once when told to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(remaining, WAIT_SLICE))

    def _stop(self, signum, frame):
        self.stdout.write("stopping after the current item …")
        self.stopping = True
