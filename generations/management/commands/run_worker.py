"""The generation worker: the generations table is the queue.

Claims pending rows with FOR UPDATE SKIP LOCKED (any number of workers on any number of
machines), runs the model's provider outside any transaction, and records the result
with a conditional update. Every ``--sweep-every`` seconds it fails and refunds rows
stuck in processing past GENERATION_PROCESSING_TIMEOUT (a worker that died mid-run).
SIGTERM/SIGINT: finish the current item, then exit.
"""

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from generations import services
from generations.providers import ProviderError, get_provider


class Command(BaseCommand):
    help = "Process pending generations until stopped (SIGTERM finishes the current one)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Process what is pending now, then exit.")
        parser.add_argument("--max-items", type=int, default=0, help="Exit after this many items (0: no limit).")
        parser.add_argument("--idle-sleep", type=float, default=1.0, help="Seconds to wait when the queue is empty.")
        parser.add_argument("--sweep-every", type=float, default=60.0, help="Seconds between sweeps of stuck rows.")

    def handle(self, *args, once, max_items, idle_sleep, sweep_every, **options):
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.stdout.write(f"worker started (sweep every {sweep_every:g} s)")
        processed, last_sweep = 0, 0.0
        while not self.stopping:
            if not connection.in_atomic_block:  # (tests run the worker inside one)
                close_old_connections()
            if time.monotonic() - last_sweep >= sweep_every:
                swept = services.generation_sweep()
                if swept:
                    self.stdout.write(self.style.WARNING(f"sweep: failed and refunded {swept} stuck generation(s)"))
                last_sweep = time.monotonic()
            generation = services.generation_claim_next()
            if generation is None:
                if once:
                    break
                time.sleep(idle_sleep)
                continue
            self.process(generation)
            processed += 1
            if max_items and processed >= max_items:
                break
        self.stdout.write(f"worker stopped after {processed} item(s)")

    def process(self, generation):
        started = time.monotonic()
        self.stdout.write(f"{generation.pk} {generation.ai_model_id}: processing (attempt {generation.attempts})")
        try:
            result = get_provider(generation.ai_model).run(generation)
        except ProviderError as exc:
            services.generation_fail(
                generation=generation,
                error=str(exc),
                from_statuses=["processing"],
                provider_request_id=exc.provider_request_id,
            )
            self.stdout.write(self.style.ERROR(f"{generation.pk}: failed and refunded: {exc}"))
            return
        except Exception as exc:  # a bug in a provider must not kill the worker or keep the credits
            services.generation_fail(
                generation=generation, error=f"Internal error: {type(exc).__name__}", from_statuses=["processing"]
            )
            self.stderr.write(f"{generation.pk}: provider crashed: {exc!r}")
            return
        if services.generation_complete(
            generation=generation, outputs=result.outputs, provider_request_id=result.provider_request_id
        ):
            elapsed = time.monotonic() - started
            self.stdout.write(self.style.SUCCESS(f"{generation.pk}: completed in {elapsed:.2f} s"))
        else:
            self.stdout.write(f"{generation.pk}: finished elsewhere meanwhile (cancelled or swept); result dropped")

    def _stop(self, signum, frame):
        self.stdout.write("stopping after the current item …")
        self.stopping = True
