"""``manage.py bench`` (``make bench``): the performance benchmark (bench/runner.py).

Loads the 10k and 1M data sets into benchmark databases on the configured server (kept
and reused), serves the app with gunicorn and the production settings, drives it with
locust over loopback beside a psycopg-only baseline, and prints every target with its
measured value and PASS/FAIL; writes bench/results.json. Exit status 1 if a target fails.

``--smoke`` is the small version CI runs: tiny data sets, seconds of load, the
correctness targets enforced (same JSON as the baseline, constant queries, no POST
errors, the credit books), the speed targets reported only; its databases are dropped.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bench.events import EventsBench
from bench.providers import ProvidersBench
from bench.runner import Bench


class Command(BaseCommand):
    help = "Benchmark the API against a psycopg-only baseline at 10k and 1M generations (make bench)."

    def add_arguments(self, parser):
        parser.add_argument("--smoke", action="store_true", help="A tiny run that checks the benchmark works (CI).")
        parser.add_argument(
            "--output", type=Path, default=None, help="Where to write the results (default bench/results.json)."
        )
        parser.add_argument(
            "--only",
            choices=["api", "providers", "events"],
            default=None,
            help="Run only the API benchmark, only generations at provider scale (one worker, the fake fal), or "
            "only live status (500 SSE streams against one events process).",
        )
        parser.add_argument(
            "--drop-data",
            action="store_true",
            help="Drop the benchmark databases afterwards (--smoke always does; by default the full data is kept).",
        )

    def handle(self, *args, **opts):
        smoke = opts["smoke"]
        default = settings.BASE_DIR / "bench" / ("results-smoke.json" if smoke else "results.json")
        output = opts["output"] or default
        failed = 0
        if opts["only"] in (None, "api"):
            bench = Bench(
                smoke=smoke,
                output=output,
                keep_data=not (smoke or opts["drop_data"]),
                out=self.stdout,
                style=self.style,
            )
            failed += bench.run()
        if opts["only"] in (None, "providers"):
            # Added to the same results file, under "providers".
            failed += ProvidersBench(smoke=smoke, output=output, out=self.stdout, style=self.style).run()
        if opts["only"] in (None, "events"):
            # Added to the same results file, under "events".
            failed += EventsBench(smoke=smoke, output=output, out=self.stdout, style=self.style).run()
        if failed:
            raise CommandError("benchmark targets failed (see the table above)")
