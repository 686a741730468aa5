"""``make bench``, generations at provider scale (issue 19): ONE worker process serving 200
video generations at once against the fake fal (tests/fakes/fal.py), each taking 20 s there.

Two runs on a benchmark database of their own (``<name>_bench_providers_<pid>``, migrated,
dropped afterwards):

* **webhooks**: the app under gunicorn (production settings) receives fal's signed
  webhooks (the worker gives fal ``<PUBLIC_BASE_URL>/api/v1/webhooks/fal``);
* **polling**: no webhook URL, the worker polls its requests itself.

Each: the worker is started and idle, the generations are created as fast as the
services allow (``submitted at once``), and the run ends when all are final. Measured:
seconds from the last creation to the last completion (database timestamps), how many
completed, the worker's peak resident memory (VmHWM), the fake's counts of calls. Targets
(full run): all 200 complete within 30 s (webhooks) and 40 s (polling) of the last
submit; the worker's memory under 200 MB. ``--smoke``: 10 generations of 2 s, within 12 s
and 22 s (the same slack), the same memory limit — enforced too, it is quick.

Then **the worker's throughput** with the local provider (``GENERATION_PROVIDER=local``:
Pillow renders a 1024×1024 PNG here, the worker stores it and its thumbnail): a queue of
150 pending images (8 in the smoke run) appears at once, rendered by one and by two
``run_worker`` processes in rounds of 1, 2, 2, 1 workers; renders per second of each and
the scaling factor. Target: two workers ≥ 1.2× one (lenient: 2 cores shared with
PostgreSQL and everything else; a queue that serialised its workers shows ~1.0).
Reported only in the smoke run and on a one-CPU machine, where two processes cannot run
at once; that every queued image is rendered is enforced always.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from django.conf import settings

from bench.part import BenchPart
from bench.runner import Server, Target, child_database_env, connection_kwargs, on_database
from velro import jwt_keys

MODEL_ID = "bench/video-model"
MEMORY_LIMIT_MB = 200.0


LOCAL_MODEL_ID = "bench/local-image"
# Two worker processes must render at least this many times as fast as one: lenient,
# because the machine has 2 cores shared with PostgreSQL, the app, locust and other work,
# and a render is CPU (Pillow) plus a few statements; a worker that serialised on the
# queue (a lock held across the render, a claim that is not SKIP LOCKED) shows ~1.0.
SCALING_GOAL = 1.2


@dataclass(frozen=True)
class Plan:
    generations: int
    run_seconds: float
    webhooks_within: float
    polling_within: float
    renders: int  # the local provider's queue per round (worker throughput)


FULL = Plan(200, 20.0, 30.0, 40.0, 150)
SMOKE = Plan(10, 2.0, 12.0, 22.0, 8)


@dataclass
class Measured:
    mode: str
    generations: int
    completed: int
    failed: int
    seconds_after_last_submit: float
    submit_seconds: float
    worker_peak_rss_mb: float
    fal_submits: int
    fal_status_calls: int
    webhooks_delivered: int


class ProvidersBench(BenchPart):
    label = "providers"
    targets_name = "provider"
    full_plan, smoke_plan = FULL, SMOKE

    # -- the run -----------------------------------------------------------------------

    def run(self) -> int:
        from tests.fakes.fal import FakeFal

        logging.getLogger("httpx").setLevel(logging.WARNING)  # the fake's webhook POSTs, one line each

        self.say(f"{self.plan.generations} video generations of {self.plan.run_seconds:g} s each, ONE worker")
        self.create_database()
        server = None
        try:
            fal = FakeFal(key="fal-bench-key")
            fal.run_seconds, fal.queue_seconds = self.plan.run_seconds, 0.0
            with fal:
                env = self.env(fal)
                server = Server("app-fal-webhooks", "velro.wsgi:application", env, self.workdir, "/api/v1/health", 200)
                server.env["WEB_CONCURRENCY"] = "4"
                server.start()
                server.wait_ready()
                self.say(f"app (webhooks) up at {server.url}, fake fal at {fal.base}")
                results = [
                    self.measure("webhooks", fal, {**env, "PUBLIC_BASE_URL": server.url}),
                    self.measure("polling", fal, {**env, "PUBLIC_BASE_URL": ""}),
                ]
            if server is not None:
                server.stop()
            throughput = self.measure_local({**env, "GENERATION_PROVIDER": "local", "PUBLIC_BASE_URL": ""})
        finally:
            if server is not None:
                server.stop()
            self.drop_database()
        return self.report(results, throughput)

    # -- the worker's throughput with the local provider --------------------------------

    def measure_local(self, env: dict) -> dict:
        """Renders per second of the worker with the local provider (Pillow, here), with
        one and with two worker processes, on a queue of ``plan.renders`` pending image
        generations that appears at once (created in one transaction while the workers
        idle). The rounds go 1, 2, 2, 1 workers, so a drift of the machine's load falls on
        both sides alike; each side's renders and seconds are pooled. A round's time runs
        from the queue's commit to the last completion (the database's clock)."""
        from generations.models import AIModel

        with on_database(self.db):
            AIModel.objects.update_or_create(
                pk=LOCAL_MODEL_ID,
                defaults={"display_name": "Bench local image", "kind": "image", "credits_cost": 1,
                          "provider": "local", "parameter_schema": {}},
            )  # fmt: skip
        rounds = []
        for number, workers in enumerate((1, 2, 2, 1), start=1):
            rounds.append(self.render_round(number, workers, env))
        pooled = {}
        for workers in (1, 2):
            mine = [r for r in rounds if r["workers"] == workers]
            renders = sum(r["completed"] for r in mine)
            seconds = sum(r["seconds"] for r in mine)
            pooled[workers] = {
                "renders": renders,
                "failed": sum(r["failed"] for r in mine),
                "seconds": round(seconds, 2),
                "renders_per_s": round(renders / seconds, 2) if seconds else 0.0,
            }
        scaling = pooled[2]["renders_per_s"] / pooled[1]["renders_per_s"] if pooled[1]["renders_per_s"] else 0.0
        self.say(
            f"local: 1 worker {pooled[1]['renders_per_s']:.1f} renders/s, 2 workers "
            f"{pooled[2]['renders_per_s']:.1f} renders/s: {scaling:.2f}×"
        )
        return {"rounds": rounds, "pooled": {str(k): v for k, v in pooled.items()}, "scaling": round(scaling, 3),
                "cpus": os.cpu_count()}  # fmt: skip

    def render_round(self, number: int, workers: int, env: dict) -> dict:
        from django.db import transaction

        from credits.services import credits_grant
        from generations import services
        from generations.models import AIModel
        from tests.factories import UserFactory

        env = {**env, "MEDIA_ROOT": str(self.workdir / f"media-local-{number}")}
        procs, logs = [], []
        try:
            for index in range(workers):
                log = open(self.workdir / f"worker-local-{number}-{index}.log", "w")  # noqa: SIM115 - closed below
                logs.append(log)
                worker = subprocess.Popen(
                    [sys.executable, "manage.py", "run_worker", "--idle-sleep", "0.1"],
                    cwd=settings.BASE_DIR,
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    start_new_session=True,
                )
                procs.append(worker)
            for worker, log in zip(procs, logs, strict=True):
                first = worker.stdout.readline()
                if "worker started" not in first:
                    raise RuntimeError(f"the worker did not start: {first!r}; see {log.name}")
                threading.Thread(target=copy_lines, args=(worker.stdout, log), daemon=True).start()
            with on_database(self.db):
                model = AIModel.objects.get(pk=LOCAL_MODEL_ID)
                person = UserFactory(email=f"local-{number}@bench.velro.local")
                credits_grant(user=person, amount=self.plan.renders, reason="benchmark")
                with transaction.atomic():  # the whole queue appears at once
                    ids = [
                        services.generation_create(user=person, ai_model=model, prompt=f"a lighthouse, render {n}").pk
                        for n in range(self.plan.renders)
                    ]
            counts = self.wait_rendered(ids, timeout=300)
        finally:
            for worker in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in procs:
                try:
                    worker.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.communicate()
            for log in logs:
                log.close()
            shutil.rmtree(env["MEDIA_ROOT"], ignore_errors=True)
        result = {"round": number, "workers": workers, "generations": len(ids), **counts}
        self.say(
            f"local round {number}: {workers} worker(s), {counts['completed']}/{len(ids)} rendered in "
            f"{counts['seconds']:.2f} s ({counts['completed'] / counts['seconds'] if counts['seconds'] else 0:.1f}/s)"
        )
        return result

    def wait_rendered(self, ids: list, *, timeout: float) -> dict:
        """Wait until none of ``ids`` is pending or processing; the seconds from the
        queue's creation (one transaction: one created_at) to the last completion."""
        return wait_settled(self.db, ids, timeout=timeout, since="min", interval=0.1)

    def env(self, fal) -> dict:
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
            "GUNICORN_MAX_REQUESTS": "0",
            "PASSWORD_BREACH_CHECK": "0",
            "LOG_LEVEL": "WARNING",
            "GENERATION_PROVIDER": "fal",
            "FAL_KEY": fal.key,
            "FAL_QUEUE_URL": fal.base,
            "FAL_JWKS_URL": fal.jwks_url,
            "FAL_TIMEOUT": "300",
            "MEDIA_ROOT": str(self.workdir / "media"),
        }

    def measure(self, mode: str, fal, env: dict) -> Measured:
        calls_before = {kind: fal.count(kind) for kind in ("submit", "status")}
        deliveries_before = len(fal.deliveries)
        log = open(self.workdir / f"worker-{mode}.log", "w")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--idle-sleep", "0.2"],
            cwd=settings.BASE_DIR,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            first = worker.stdout.readline()
            if "worker started" not in first:
                raise RuntimeError(f"the worker did not start: {first!r}; see {log.name}")
            self.say(f"{mode}: {first.strip()}")
            # The rest of its output, timestamped, into its log (a full pipe would stop it).
            threading.Thread(target=copy_lines, args=(worker.stdout, log), daemon=True).start()
            ids, submit_seconds = self.submit(mode)
            self.say(f"{mode}: {len(ids)} generations created in {submit_seconds:.2f} s; waiting")
            counts = self.wait(ids, timeout=self.plan.run_seconds + 120)
            peak = peak_rss_mb(worker.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.communicate()
            log.close()
        measured = Measured(
            mode=mode,
            generations=len(ids),
            completed=counts["completed"],
            failed=counts["failed"],
            seconds_after_last_submit=counts["seconds"],
            submit_seconds=round(submit_seconds, 2),
            worker_peak_rss_mb=round(peak, 1),
            fal_submits=fal.count("submit") - calls_before["submit"],
            fal_status_calls=fal.count("status") - calls_before["status"],
            webhooks_delivered=len(fal.deliveries) - deliveries_before,
        )
        self.say(
            f"{mode}: {measured.completed}/{measured.generations} completed, the last "
            f"{measured.seconds_after_last_submit:.1f} s after the last submit; worker peak {peak:.0f} MB; "
            f"{measured.fal_status_calls} status calls, {measured.webhooks_delivered} webhooks"
        )
        return measured

    def submit(self, mode: str) -> tuple[list, float]:
        """The generations, created as people would (generation_create charges each),
        as fast as this process can: they are all pending before the worker is through."""
        from credits.services import credits_grant
        from generations import services
        from generations.models import AIModel
        from tests.factories import UserFactory

        with on_database(self.db):
            model, _ = AIModel.objects.update_or_create(
                pk=MODEL_ID,
                defaults={
                    "display_name": "Bench video",
                    "kind": "video",
                    "credits_cost": 1,
                    "provider": "fal",
                    "parameter_schema": {},
                },
            )
            people = [
                UserFactory(email=f"{mode}-{n}@bench.velro.local") for n in range(max(1, self.plan.generations // 50))
            ]
            for person in people:
                credits_grant(user=person, amount=100, reason="benchmark")
            started = time.monotonic()
            ids = [
                services.generation_create(user=people[n % len(people)], ai_model=model, prompt=f"{mode} {n}").pk
                for n in range(self.plan.generations)
            ]
            return ids, time.monotonic() - started

    def wait(self, ids: list, *, timeout: float) -> dict:
        """Wait until none of ``ids`` is open; the seconds from the last submit to the
        last completion."""
        counts = wait_settled(self.db, ids, timeout=timeout, since="max", interval=0.25)
        return {**counts, "seconds": round(counts["seconds"], 2)}

    # -- the report --------------------------------------------------------------------

    def throughput_targets(self, throughput: dict) -> list[Target]:
        pooled = throughput["pooled"]
        one, two = pooled["1"], pooled["2"]
        all_rendered = one["failed"] == two["failed"] == 0 and all(r["open"] == 0 for r in throughput["rounds"])
        # Report only where two processes cannot run at once (one CPU), and in the smoke run.
        enforced = not self.smoke and (os.cpu_count() or 1) >= 2
        return [
            Target(
                "providers_local_renders",
                f"local provider, {self.plan.renders} queued images a round: every one rendered",
                "all rendered",
                f"{one['renders'] + two['renders']} rendered, {one['failed'] + two['failed']} failed",
                all_rendered,
                True,
                f"1 worker {one['renders_per_s']:.1f} renders/s, 2 workers {two['renders_per_s']:.1f} renders/s",
            ),
            Target(
                "providers_worker_scaling",
                "local provider: renders/s with 2 worker processes ÷ with 1",
                f"≥ {SCALING_GOAL:g}×",
                f"{throughput['scaling']:.2f}×",
                throughput["scaling"] >= SCALING_GOAL,
                enforced,
                f"1 worker {one['renders_per_s']:.1f}/s ({one['renders']} in {one['seconds']:.1f} s), 2 workers "
                f"{two['renders_per_s']:.1f}/s ({two['renders']} in {two['seconds']:.1f} s); rounds 1, 2, 2, 1; "
                f"{throughput['cpus']} CPUs",
            ),
        ]

    def targets(self, results: list[Measured]) -> list[Target]:
        by_mode = {m.mode: m for m in results}
        targets = []
        for mode, within in (("webhooks", self.plan.webhooks_within), ("polling", self.plan.polling_within)):
            m = by_mode[mode]
            all_done = m.completed == m.generations
            targets.append(
                Target(
                    f"providers_{mode}",
                    f"{m.generations} videos ({self.plan.run_seconds:g} s each at fal), one worker, {mode}",
                    f"all complete within {within:g} s of the last submit",
                    f"{m.completed}/{m.generations} in {m.seconds_after_last_submit:.1f} s",
                    all_done and m.seconds_after_last_submit <= within,
                )
            )
        peak = max(m.worker_peak_rss_mb for m in results)
        targets.append(
            Target(
                "providers_worker_memory",
                "the worker's peak resident memory (both runs)",
                f"< {MEMORY_LIMIT_MB:g} MB",
                f"{peak:.0f} MB",
                0 < peak < MEMORY_LIMIT_MB,
            )
        )
        webhooks = by_mode["webhooks"]
        targets.append(
            Target(
                "providers_webhooks_drive_it",
                "with webhooks, results come by webhook, not by polling",
                "≥ 1 webhook per generation; ≤ 1 status call per generation (its metrics)",
                f"{webhooks.webhooks_delivered} webhooks, {webhooks.fal_status_calls} status calls",
                webhooks.webhooks_delivered >= webhooks.generations
                and webhooks.fal_status_calls <= webhooks.generations,
            )
        )
        return targets

    def report(self, results: list[Measured], throughput: dict) -> int:
        return self.report_targets(
            "Generations at provider scale (fake fal, one worker), and the worker's throughput (local):",
            self.targets(results) + self.throughput_targets(throughput),
            {"runs": {m.mode: asdict(m) for m in results}, "worker_throughput": throughput},
        )


def wait_settled(db: str, ids: list, *, timeout: float, since: str, interval: float) -> dict:
    """Poll until none of the generations ``ids`` is pending or processing (or
    ``timeout``): how many completed, failed and are still open, and the seconds from
    their first (``since="min"``) or last (``"max"``) creation to the last completion."""
    assert since in ("min", "max")
    deadline = time.monotonic() + timeout
    with psycopg.connect(**connection_kwargs(db), autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),"
                " count(*) FILTER (WHERE status IN ('pending', 'processing')),"
                f" extract(epoch FROM max(completed_at) - {since}(created_at))"
                " FROM public.generations WHERE id = ANY(%s)",
                [ids],
            ).fetchone()
            if row[2] == 0 or time.monotonic() > deadline:
                break
            time.sleep(interval)
    return {"completed": row[0], "failed": row[1], "open": row[2], "seconds": float(row[3] or 0.0)}


def copy_lines(source, log) -> None:
    with contextlib.suppress(ValueError, OSError):
        for line in source:
            log.write(f"{time.time():.3f} {line}")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
