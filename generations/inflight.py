"""Submit and release: one worker keeps hundreds of provider requests in flight (issue 19).

A worker claims a pending generation whose provider ``releases`` (fal) and hands it over
(``generation_release``: processing, due now); from then on the row itself says what is
next, so any worker can carry on where another stopped:

* **submit** (no request id yet): queue it at the provider with the webhook URL
  (``<PUBLIC_BASE_URL>/api/v1/webhooks/fal`` when set) and keep its request id and URLs.
  A retryable failure before the provider can have queued it (no connection, 5xx, 429
  with its ``Retry-After``) is tried again with backoff up to GENERATION_MAX_ATTEMPTS
  (``attempts``); anything else fails and refunds it.
* **poll** (a request id, no result): ask the provider's status — the first time
  GENERATION_POLL_INTERVAL s after the submit, or, with webhooks on, only if no webhook
  came within GENERATION_WEBHOOK_GRACE s; then backing off to
  GENERATION_POLL_MAX_INTERVAL. Each poll keeps the progress (queue position, stage,
  percentage). A completed request's result is fetched and kept as a webhook's would
  be. Past FAL_TIMEOUT since the submit, the request is cancelled at the provider and
  the generation fails, refunded.
* **finish** (a result is in, from a webhook or a poll): copy the outputs into our
  storage (generations/outputs.py) and complete it, or fail and refund it.

Only the worker's main thread touches the database. The provider calls and the copying
run in a bounded pool of GENERATION_PROVIDER_CONCURRENCY threads; a row is *leased* while
a job works on it (``generation_claim_due`` moves its ``next_poll_at`` past the lease), so
no two workers work on one row, and a worker that dies leaves rows another picks up when
the lease runs out. Every outcome is written with a conditional update: a webhook and a
poll racing, two deliveries, a cancel or the sweep — one wins, nothing is done twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from generations import services
from generations.models import Generation
from generations.outputs import delete_quietly, store_outputs, stored_paths
from generations.providers import ProviderError, provider_named
from generations.providers.fal import metrics_from_status, parse_outputs, progress_from_status

logger = logging.getLogger(__name__)

CALL_LEASE = 90.0  # seconds a submit or poll may take before another worker may try
# Outputs copied in at once (downloads, decoding, thumbnails): CPU-bound under the GIL, so
# more threads would not finish sooner, only hold more files and memory at the same time.
COPY_CONCURRENCY = 8
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0  # retried submits: 1, 2, 4 … s (or Retry-After)


def webhook_url(provider: str) -> str:
    base = settings.PUBLIC_BASE_URL
    return f"{base}/api/v1/webhooks/{provider}" if base else ""


def submit_backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return max(retry_after, 0.5)
    return min(BACKOFF_FIRST * 2 ** max(attempt - 1, 0), BACKOFF_MAX)


class InFlight:
    """The worker's requests in flight: what it handed over, and the jobs running now."""

    def __init__(self, *, out=None, concurrency: int | None = None, max_in_flight: int | None = None):
        self.out = out or (lambda message: None)
        self.concurrency = concurrency or settings.GENERATION_PROVIDER_CONCURRENCY
        self.max_in_flight = max_in_flight or settings.GENERATION_MAX_IN_FLIGHT
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="provider")
        self.jobs: dict[Future, tuple[str, Generation]] = {}
        self.done: deque = deque()  # finished jobs whose outcome is not recorded yet
        self.mine: set = set()  # handed over by this worker and not final (its capacity)
        self.providers: dict = {}
        self.last_mine_check = 0.0
        self.copying = threading.BoundedSemaphore(min(COPY_CONCURRENCY, self.concurrency))

    # -- what the worker loop calls ----------------------------------------------------

    def capacity(self) -> int:
        return self.max_in_flight - len(self.mine)

    def hand_over(self, generation: Generation, provider: str) -> None:
        if services.generation_release(generation=generation, provider=provider):
            self.mine.add(generation.pk)

    def busy(self) -> bool:
        """Anything in flight for this worker: jobs running, outcomes to record, rows of its own."""
        return bool(self.jobs or self.done or self.mine)

    def step(self) -> int:
        """Record finished jobs, then start jobs for the rows that are due. Returns how
        much it did (0: nothing to do now). Database errors propagate (the worker waits
        and calls again; unrecorded outcomes stay queued)."""
        did = self._harvest()
        did += self._record()
        free = self.concurrency * 2 - len(self.jobs)  # a little queue in the pool, not more
        if free > 0:
            busy = [generation.pk for _, generation in self.jobs.values()]
            for generation in services.generation_claim_due(
                limit=free, lease_seconds=CALL_LEASE, finish_lease_seconds=self._finish_lease(), exclude=busy
            ):
                self._start(generation)
                did += 1
        self._forget_finished()
        return did

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for provider in self.providers.values():
            close = getattr(provider, "close", None)
            if close:
                close()

    # -- jobs (pool threads: provider calls and files only, never the database) --------

    def _provider(self, name: str):
        if name not in self.providers:
            provider = provider_named(name)
            provider.connections = self.concurrency + 4
            self.providers[name] = provider
        return self.providers[name]

    def _finish_lease(self) -> float:
        """Copying outputs in may take MEDIA_OUTPUT_TIMEOUT per file (up to 4 images)."""
        return max(CALL_LEASE, settings.MEDIA_OUTPUT_TIMEOUT * 4 + 30)

    def _start(self, generation: Generation) -> None:
        if generation.provider_result is not None:
            kind, job = "finish", self._finish
        elif not generation.provider_request_id:
            kind, job = "submit", self._submit
        else:
            kind, job = "poll", self._poll
        future = self.pool.submit(job, generation)
        self.jobs[future] = (kind, generation)

    def _submit(self, generation: Generation):
        provider = self._provider(generation.provider)
        return provider.submit(generation, webhook_url=webhook_url(generation.provider))

    def _poll(self, generation: Generation):
        provider = self._provider(generation.provider)
        # No call outlives the time-out by much: a provider that stops answering must
        # not hold the request (and the person's credits) for the HTTP timeouts.
        deadline = time.monotonic() + max(self._remaining(generation), 1.0)
        try:
            status = provider.status(generation, deadline=deadline)
            if status.get("status") == "COMPLETED":
                return ("result", self._result(provider, generation, status, deadline), metrics_from_status(status))
            if status.get("status") not in ("IN_QUEUE", "IN_PROGRESS"):
                raise ProviderError(
                    f"The provider returned an unexpected status {str(status.get('status'))[:40]!r}.",
                    provider_request_id=generation.provider_request_id,
                )
        except ProviderError as exc:
            if not self._timed_out(generation):
                raise  # polled again later, backing off
            # Cancelled at the provider before it fails here, so it stops running (and billing) there.
            return ("timeout", f"the last poll failed ({exc}); {services.generation_cancel_quietly(generation)}", None)
        if self._timed_out(generation):
            return ("timeout", services.generation_cancel_quietly(generation), None)
        return ("progress", progress_from_status(status), None)

    def _result(self, provider, generation: Generation, status: dict, deadline: float) -> dict:
        """A completed request's result, kept as a webhook's would be."""
        result = {"via": "poll", "received_at": timezone.now().isoformat()}
        if status.get("error"):
            error = f"fal.ai request {generation.provider_request_id} failed: {str(status['error'])[:1900]}"
            return {**result, "status": "ERROR", "payload": None, "error": error}
        try:
            return {**result, "status": "OK", "payload": provider.result(generation, deadline=deadline), "error": ""}
        except ProviderError as exc:
            if exc.retryable:
                raise  # fetched again at the next poll
            return {**result, "status": "ERROR", "payload": None, "error": str(exc)[:2000]}

    def _remaining(self, generation: Generation) -> float:
        started = generation.submitted_at or generation.started_at
        if started is None:
            return settings.FAL_TIMEOUT
        return settings.FAL_TIMEOUT - (timezone.now() - started).total_seconds()

    def _finish(self, generation: Generation):
        result = generation.provider_result or {}
        metrics = None
        if generation.provider_inference_seconds is None and result.get("via") == "webhook":
            try:  # a webhook carries no metrics: one status call for them (best effort)
                metrics = metrics_from_status(self._provider(generation.provider).status(generation)) or None
            except ProviderError:
                metrics = None
        if result.get("status") != "OK":
            return ("failed", result.get("error") or "The provider reported an error.", metrics)
        payload = result.get("payload")
        if not isinstance(payload, dict):
            return ("failed", result.get("error") or "The provider returned no result.", metrics)
        try:
            outputs = parse_outputs(
                generation.ai_model.kind, payload, generation.parameters or {}, generation.provider_request_id
            )
            with self.copying:
                stored = store_outputs(generation, outputs)
        except ProviderError as exc:
            return ("failed", str(exc), metrics)
        return ("stored", stored, metrics)

    def _timed_out(self, generation: Generation) -> bool:
        return self._remaining(generation) <= 0

    # -- outcomes (main thread: the database) ------------------------------------------

    def _harvest(self) -> int:
        finished = [future for future in self.jobs if future.done()]
        for future in finished:
            kind, generation = self.jobs.pop(future)
            try:
                outcome = future.result()
            except ProviderError as exc:
                outcome = exc
            except Exception as exc:  # a bug in a provider must not kill the worker or keep the credits
                logger.exception("%s of generation %s crashed", kind, generation.pk)
                outcome = ProviderError(f"Internal error: {type(exc).__name__}")
            self.done.append((kind, generation, outcome))
        return len(finished)

    def _record(self) -> int:
        recorded = 0
        while self.done:
            kind, generation, outcome = self.done[0]
            getattr(self, f"_record_{kind}")(generation, outcome)  # may raise: kept for the next call
            self.done.popleft()
            recorded += 1
        return recorded

    def _record_submit(self, generation: Generation, outcome) -> None:
        if isinstance(outcome, ProviderError):
            attempts = generation.attempts
            if outcome.retryable and attempts < settings.GENERATION_MAX_ATTEMPTS:
                delay = submit_backoff(attempts, outcome.retry_after)
                services.generation_retry_later(generation=generation, error=str(outcome), delay=delay)
                self.out(f"{generation.pk}: submit failed (attempt {attempts}), retrying in {delay:.1f} s: {outcome}")
                return
            tries = f" after {attempts} attempt(s)" if outcome.retryable else ""
            self._fail(generation, f"{outcome}{tries}")
            return
        if webhook_url(generation.provider):
            first = settings.GENERATION_WEBHOOK_GRACE
        else:
            first = settings.GENERATION_POLL_INTERVAL
        first = min(first, settings.FAL_TIMEOUT)
        if services.generation_submitted(
            generation=generation,
            request_id=outcome.request_id,
            urls=outcome.urls,
            next_poll_at=timezone.now() + timedelta(seconds=first),
        ):
            self.out(f"{generation.pk}: submitted to {generation.provider} ({outcome.request_id})")
            return
        # Cancelled or swept while it was being submitted: don't leave it running there.
        generation.provider_request_id, generation.provider_urls = outcome.request_id, outcome.urls
        self.pool.submit(services.generation_cancel_quietly, generation)

    def _record_poll(self, generation: Generation, outcome) -> None:
        if isinstance(outcome, ProviderError):
            progress = {**(generation.progress or {}), "error": str(outcome)[:300]}
            services.generation_progress(
                generation=generation, progress=progress, next_poll_at=self._next_poll(generation, outcome.retry_after)
            )
            return
        kind, value, metrics = outcome
        if kind == "result":
            services.generation_result_received(
                request_id=generation.provider_request_id, result=value, metrics=metrics
            )
        elif kind == "timeout":
            timeout = settings.FAL_TIMEOUT
            self._fail(
                generation, f"The provider request timed out: not finished {timeout:g} s after its submit; {value}."
            )
        else:
            services.generation_progress(
                generation=generation, progress=value, next_poll_at=self._next_poll(generation)
            )

    def _record_finish(self, generation: Generation, outcome) -> None:
        if isinstance(outcome, ProviderError):
            self._fail(generation, str(outcome))
            return
        kind, value, metrics = outcome
        if kind == "failed":
            self._fail(generation, value, metrics=metrics)
            return
        if services.generation_complete(
            generation=generation, outputs=value, provider_request_id=generation.provider_request_id, metrics=metrics
        ):
            elapsed = (timezone.now() - generation.started_at).total_seconds() if generation.started_at else 0
            self.out(f"{generation.pk}: completed in {elapsed:.2f} s")
        else:
            delete_quietly(stored_paths(value))
            self.out(f"{generation.pk}: finished elsewhere meanwhile (cancelled or swept); result dropped")

    def _fail(self, generation: Generation, error: str, *, metrics=None) -> None:
        if services.generation_fail(generation=generation, error=error, from_statuses=[Generation.Status.PROCESSING]):
            self.out(f"{generation.pk}: failed and refunded: {error}")
        if metrics:
            Generation.objects.filter(pk=generation.pk).update(**services._metrics_columns(metrics))

    def _next_poll(self, generation: Generation, retry_after: float | None = None):
        """Backing off with the request's age: GENERATION_POLL_INTERVAL at first, a
        quarter of its age later, at most GENERATION_POLL_MAX_INTERVAL (a 20 s video is
        polled about ten times); never past the time-out, so a request that outlives
        FAL_TIMEOUT is seen at once."""
        now = timezone.now()
        started = generation.submitted_at or generation.started_at or now
        age = (now - started).total_seconds()
        delay = min(max(settings.GENERATION_POLL_INTERVAL, age / 4), settings.GENERATION_POLL_MAX_INTERVAL)
        if retry_after is not None:
            delay = max(delay, retry_after)
        deadline = started + timedelta(seconds=settings.FAL_TIMEOUT + 0.5)
        return min(now + timedelta(seconds=delay), max(deadline, now))

    def _forget_finished(self) -> None:
        """Drop rows of this worker's that are final (a webhook, a cancel, another worker)."""
        if not self.mine or time.monotonic() - self.last_mine_check < 0.5:
            return
        self.last_mine_check = time.monotonic()
        still = set(
            Generation.objects.filter(pk__in=list(self.mine), status=Generation.Status.PROCESSING).values_list(
                "pk", flat=True
            )
        )
        self.mine &= still
