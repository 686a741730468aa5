"""The load of one benchmark scenario, run by ``locust --headless`` (bench/runner.py).

The scenario comes from a JSON file named by ``BENCH_PLAN``::

    {"method": "GET" | "POST",
     "requests": [{"path": "/api/v1/...", "token": "<jwt>", "body": {...} | null}, ...],
     "max_requests": 5000,
     "expect": [200, 201],
     "samples_file": "/tmp/.../samples.json"}

Each simulated client takes the next entry of ``requests`` (client i uses entry i modulo
the list, so 32 POST clients can be 32 different people) and sends it back to back with
no think time (a closed loop). Every response's latency is recorded with full precision
(locust's own percentiles round to whole milliseconds, too coarse for a 1.10× ratio) and
written, with start times and statuses, to ``samples_file`` when locust quits.
Any status outside ``expect`` counts as an error.
"""

import itertools
import json
import os
import time

from locust import FastHttpUser, constant, events, task

PLAN = json.loads(open(os.environ["BENCH_PLAN"], encoding="utf-8").read())
EXPECT = set(PLAN.get("expect") or [200])
_clients = itertools.count()
_samples: list[tuple[float, float, int]] = []  # (start, latency ms, status)
_errors: list[str] = []


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, exception=None, start_time=None, **kw):
    status = getattr(response, "status_code", 0) or 0
    _samples.append((start_time or time.time(), response_time, status))
    if (exception is not None or status not in EXPECT) and len(_errors) < 20:
        body = getattr(response, "text", "") or ""
        _errors.append(f"{status} {exception or ''} {body[:300]}")
    global _stopping
    if len(_samples) >= PLAN["max_requests"] and not _stopping and _runner is not None:
        _stopping = True
        _runner.quit()


_runner = None
_stopping = False


@events.init.add_listener
def _keep_runner(environment, **kwargs):
    global _runner
    _runner = environment.runner


@events.quitting.add_listener
def _write_samples(environment, **kwargs):
    with open(PLAN["samples_file"], "w", encoding="utf-8") as out:
        json.dump({"samples": _samples, "errors": _errors, "expect": sorted(EXPECT)}, out)


class Client(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        entry = PLAN["requests"][next(_clients) % len(PLAN["requests"])]
        self.path = entry["path"]
        self.headers = {"Authorization": f"Bearer {entry['token']}", "Accept": "application/json"}
        self.body = entry.get("body")

    @task
    def send(self):
        if PLAN["method"] == "POST":
            self.client.post(self.path, json=self.body, headers=self.headers, name=PLAN.get("name", "POST"))
        else:
            self.client.get(self.path, headers=self.headers, name=PLAN.get("name", "GET"))
