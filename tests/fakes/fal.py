"""fal.ai's queue API on loopback, with webhooks signed as fal signs them (issue 19).

What it speaks (the wire format in ../shared/reference/FAL.md, from fal's docs and its
official client):

* ``POST /<model id>[?fal_webhook=<url>]`` (``Authorization: Key <key>``) queues a
  request: ``{request_id, gateway_request_id, status_url, response_url, cancel_url}``,
  the URLs under the app id (``fal-ai/flux`` for ``fal-ai/flux/dev``).
* ``GET <status_url>`` → ``IN_QUEUE`` with a 0-indexed ``queue_position``, then
  ``IN_PROGRESS`` with ``logs`` (``step k/n``), then ``COMPLETED`` with ``logs`` and
  ``metrics.inference_time`` (and ``error`` when the model failed).
* ``GET <response_url>`` → the model's output JSON (``images`` or ``video``), files served
  by this server under ``/files/``; 400 while unfinished, 422 for a failed request.
* ``PUT <cancel_url>`` → 202 ``CANCELLATION_REQUESTED`` while queued; 400
  ``ALREADY_COMPLETED`` once finished. fal's docs do not say what a running request
  answers: this fake says 400 ``IN_PROGRESS`` (the app only trusts the 202).
* When a request finishes, ``POST <fal_webhook>`` with ``{request_id, gateway_request_id,
  status: OK | ERROR, payload, error?}`` and the headers ``X-Fal-Webhook-Request-Id``,
  ``-User-Id``, ``-Timestamp`` and ``-Signature``: the hex ED25519 signature (this
  fake's own key) of ``request_id \\n user_id \\n timestamp \\n sha256hex(body)``. A
  delivery that is not answered 2xx is retried (``webhook_retry_delays``), each time with
  a fresh timestamp and signature, as fal does.
* ``GET /.well-known/jwks.json``: the public keys (``kty OKP``, ``crv Ed25519``, ``x``).

Behaviour a test (or ``make run`` / the benchmark) sets on the instance: how long a
request waits in the queue and runs (``queue_seconds``, ``run_seconds``), ``latency`` of
every answer, scripted faults per call (``fail("status", 503, times=2)``, 429 with
``Retry-After``), a model failure (``outcome = "error"``), webhooks delivered twice
(``webhook_copies``), late (``webhook_delay``), held and then flushed in any order
(``hold_webhooks`` + ``flush_webhooks("reverse")``), or never (``webhooks = False``).
``calls`` records every request received; ``deliveries`` every webhook sent and the
answer it got.

Run it on its own for development (``make run FAKE_FAL=1`` does): ``python -m
tests.fakes.fal --port 8765 --run-seconds 5``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import itertools
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

USER_ID = "fake-fal-user"
STEPS = 20  # the "step k/n" logs of a running request


def b64url(data: bytes, *, padded: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if padded else text.rstrip("=")


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What fal signs (FAL.md, "Verifying Your Webhook", step 4)."""
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


@dataclass
class Call:
    method: str
    path: str
    kind: str
    headers: dict
    body: object
    status: int = 0


@dataclass
class Request:
    id: str
    model: str
    app: str
    input: dict
    webhook: str
    submitted: float
    queue_seconds: float
    run_seconds: float
    outcome: str
    cancelled: bool = False
    finished: bool = False


@dataclass
class Delivery:
    request_id: str
    url: str
    body: bytes
    attempt: int = 1
    answers: list = field(default_factory=list)


class FakeFal:
    def __init__(self, *, key: str = "fal-test-key", host: str = "127.0.0.1", port: int = 0):
        self.key = key
        self.queue_seconds = 0.0
        self.run_seconds = 0.3
        self.latency = 0.0
        self.outcome = "ok"  # or "error": the model fails (status COMPLETED + error, webhook ERROR)
        self.webhooks = True
        self.webhook_copies = 1
        self.webhook_delay = 0.0
        self.webhook_retry_delays = [0.5, 1.0, 2.0]
        self.hold_webhooks = False
        self.held: list[Delivery] = []
        self.user_id = USER_ID
        self.signing_key = Ed25519PrivateKey.generate()
        self.published = [self.signing_key]  # the keys the JWKS lists
        self.padded_jwks = False
        self.metrics_cost = None  # a cost to report in metrics (fal's docs name none)
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.requests: dict[str, Request] = {}
        self.faults: dict[str, list[tuple[int, dict]]] = {}
        self.lock = threading.RLock()
        self._events: list = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self.lock)
        self._stopping = False
        self._files: dict[str, tuple[bytes, str]] = {}
        self._templates: dict[str, tuple[bytes, str]] = {}
        self._senders = ThreadPoolExecutor(max_workers=32, thread_name_prefix="fake-fal-webhook")
        self._http = httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0))
        self.server = ThreadingHTTPServer((host, port), _Handler, bind_and_activate=False)
        self.server.request_queue_size = 512  # hundreds of concurrent polls
        self.server.allow_reuse_address = True
        self.server.server_bind()
        self.server.server_activate()
        self.server.daemon_threads = True
        self.server.fal = self
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.clock = threading.Thread(target=self._run_clock, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self):
        self.thread.start()
        self.clock.start()
        return self

    def __exit__(self, *exc):
        with self.lock:
            self._stopping = True
            self._wake.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.clock.join(timeout=5)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    @property
    def jwks_url(self) -> str:
        return f"{self.base}/.well-known/jwks.json"

    def use(self, settings, *, public_base_url: str = "") -> None:
        """Point the app's fal settings at this fake (``public_base_url``: webhooks on)."""
        settings.FAL_KEY = self.key
        settings.FAL_QUEUE_URL = self.base
        settings.FAL_JWKS_URL = self.jwks_url
        settings.PUBLIC_BASE_URL = public_base_url

    # -- what tests set ----------------------------------------------------------------

    def fail(self, kind: str, status: int, *, times: int = 1, retry_after: float | None = None, body=None) -> None:
        """The next ``times`` calls of ``kind`` (submit, status, result, cancel) answer
        ``status``; a 429 or 503 may carry ``Retry-After``."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self.lock:
            self.faults.setdefault(kind, []).extend([(status, {"headers": headers, "body": body})] * times)

    def rotate_key(self, *, keep_old: bool = True) -> None:
        """Sign with a new key from now on; the JWKS lists it (and the old one, unless not)."""
        with self.lock:
            self.signing_key = Ed25519PrivateKey.generate()
            self.published = [*self.published, self.signing_key] if keep_old else [self.signing_key]

    def jwks(self) -> dict:
        keys = []
        for number, key in enumerate(self.published):
            raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            keys.append(
                {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw, padded=self.padded_jwks), "kid": f"fake-{number}"}
            )
        return {"keys": keys}

    def sign(self, body: bytes, request_id: str, *, timestamp: int | None = None, key=None) -> dict:
        """The headers fal sends with ``body`` (tests forge and replay with this)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = (key or self.signing_key).sign(signed_message(request_id, self.user_id, stamp, body))
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": self.user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": signature.hex(),
        }

    def webhook_body(self, request_id: str) -> bytes:
        """The body fal POSTs for a finished request."""
        with self.lock:
            request = self.requests[request_id]
        body = {"request_id": request.id, "gateway_request_id": request.id}
        if request.outcome == "error":
            body.update(status="ERROR", error="Invalid status code: 422", payload={"detail": [{"msg": "NSFW"}]})
        else:
            body.update(status="OK", payload=self.result(request))
        return json.dumps(body).encode()

    def flush_webhooks(self, order: str = "reverse") -> None:
        """Send the held deliveries: ``reverse`` or ``shuffle`` them (out of order)."""
        with self.lock:
            held, self.held = self.held, []
        if order == "reverse":
            held.reverse()
        elif order == "shuffle":
            random.shuffle(held)
        for delivery in held:
            self._send(delivery)

    def redeliver(self, request_id: str) -> Delivery:
        """One more delivery of a finished request's webhook (fresh timestamp and signature)."""
        with self.lock:
            url = self.requests[request_id].webhook
        delivery = Delivery(request_id, url, self.webhook_body(request_id))
        self._deliver(delivery)
        return delivery

    def state(self, request_id: str) -> str:
        with self.lock:
            return self._state(self.requests[request_id], time.monotonic())[0]

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for call in self.calls if call.kind == kind)

    # -- the queue ---------------------------------------------------------------------

    def _state(self, request: Request, now: float) -> tuple[str, float]:
        """(IN_QUEUE | IN_PROGRESS | COMPLETED | CANCELLED, fraction of the run done)."""
        if request.cancelled:
            return "CANCELLED", 0.0
        elapsed = now - request.submitted
        if elapsed < request.queue_seconds:
            return "IN_QUEUE", 0.0
        if elapsed < request.queue_seconds + request.run_seconds:
            return "IN_PROGRESS", (elapsed - request.queue_seconds) / max(request.run_seconds, 1e-9)
        return "COMPLETED", 1.0

    def submit(self, model: str, data: dict, webhook: str) -> Request:
        request_id = str(uuid.uuid4())
        app = "/".join(model.split("/")[:2])
        with self.lock:
            request = Request(
                request_id,
                model,
                app,
                data,
                webhook,
                time.monotonic(),
                self.queue_seconds,
                self.run_seconds,
                self.outcome,
            )
            self.requests[request_id] = request
            self._at(request.submitted + request.queue_seconds + request.run_seconds, ("finish", request_id))
        return request

    def status(self, request: Request, logs: bool) -> dict:
        now = time.monotonic()
        with self.lock:
            state, done = self._state(request, now)
            ahead = sum(
                1
                for other in self.requests.values()
                if other.submitted < request.submitted and self._state(other, now)[0] == "IN_QUEUE"
            )
        base = f"{self.base}/{request.app}/requests/{request.id}"
        if state == "IN_QUEUE":
            return {"status": "IN_QUEUE", "queue_position": ahead, "response_url": base}
        step = min(STEPS, int(done * STEPS))
        lines = [
            {"message": f"step {k}/{STEPS}", "level": "INFO", "source": "user", "timestamp": _iso()}
            for k in range(1, step + 1)
        ]
        if state == "IN_PROGRESS":
            return {"status": "IN_PROGRESS", "logs": lines if logs else None, "response_url": base}
        answer = {"status": "COMPLETED", "logs": lines if logs else None, "response_url": base}
        if state == "CANCELLED":
            answer["error"] = "Request was cancelled."
            return answer
        answer["metrics"] = {"inference_time": request.run_seconds}
        if self.metrics_cost is not None:
            answer["metrics"]["cost"] = self.metrics_cost
        if request.outcome == "error":
            answer["error"] = "Invalid status code: 422"
        return answer

    def result(self, request: Request) -> dict:
        video_models = ("video", "veo", "kling", "luma", "hailuo", "wan-")
        if any(word in request.model for word in video_models) or "duration" in request.input:
            return {"video": {"url": self._file(request, "mp4"), "content_type": "video/mp4", "file_size": None}}
        count = int(request.input.get("num_images") or 1)
        size = request.input.get("image_size") or {"width": 64, "height": 48}
        return {
            "images": [
                {
                    "url": self._file(request, "png", number),
                    "content_type": "image/png",
                    "width": int(size.get("width", 64)),
                    "height": int(size.get("height", 48)),
                }
                for number in range(count)
            ],
            "seed": request.input.get("seed", 42),
        }

    def _file(self, request: Request, extension: str, number: int = 0) -> str:
        from tests.fakes.cdn import image_bytes, video_bytes

        name = f"/files/{request.id}/{number}.{extension}"
        with self.lock:
            if extension not in self._templates:  # made once: the same small file for every request
                self._templates[extension] = (
                    (video_bytes(), "video/mp4") if extension == "mp4" else (image_bytes(), "image/png")
                )
            self._files[name] = self._templates[extension]
        return f"{self.base}{name}"

    def cancel(self, request: Request) -> tuple[int, dict]:
        with self.lock:
            state, _ = self._state(request, time.monotonic())
            if state == "IN_QUEUE":
                request.cancelled = True
                return 202, {"status": "CANCELLATION_REQUESTED"}
            if state == "IN_PROGRESS":
                return 400, {"status": "IN_PROGRESS"}
            return 400, {"status": "ALREADY_COMPLETED"}

    # -- the clock: finishing requests, sending webhooks ------------------------------

    def _at(self, when: float, event) -> None:
        heapq.heappush(self._events, (when, next(self._seq), event))
        self._wake.notify_all()

    def _run_clock(self) -> None:
        with self.lock:
            while not self._stopping:
                now = time.monotonic()
                due = []
                while self._events and self._events[0][0] <= now:
                    due.append(heapq.heappop(self._events)[2])
                for kind, subject in due:
                    if kind == "finish":
                        self._finished(self.requests[subject])
                    else:  # "send": a delivery whose time has come
                        self._senders.submit(self._post, subject)
                timeout = self._events[0][0] - time.monotonic() if self._events else 1.0
                self._wake.wait(max(0.0, min(timeout, 1.0)))

    def _finished(self, request: Request) -> None:
        if request.cancelled or request.finished:
            return
        request.finished = True
        if not (self.webhooks and request.webhook):
            return
        for _ in range(max(1, self.webhook_copies)):
            delivery = Delivery(request.id, request.webhook, self.webhook_body(request.id))
            if self.hold_webhooks:
                self.held.append(delivery)
            else:
                self._at(time.monotonic() + self.webhook_delay, ("send", delivery))

    def _send(self, delivery: Delivery) -> None:
        with self.lock:
            self._at(time.monotonic(), ("send", delivery))

    def _deliver(self, delivery: Delivery) -> None:
        """Deliver now, in the caller's thread (tests: ``redeliver``)."""
        self._post(delivery, retry=False)

    def _post(self, delivery: Delivery, retry: bool = True) -> None:
        headers = {"Content-Type": "application/json", **self.sign(delivery.body, delivery.request_id)}
        try:
            response = self._http.post(delivery.url, content=delivery.body, headers=headers)
            answer = response.status_code
        except httpx.HTTPError as exc:
            answer = type(exc).__name__
        with self.lock:
            delivery.answers.append(answer)
            if delivery not in self.deliveries:
                self.deliveries.append(delivery)
            ok = isinstance(answer, int) and 200 <= answer < 300
            if retry and not ok and delivery.attempt <= len(self.webhook_retry_delays) and not self._stopping:
                delay = self.webhook_retry_delays[delivery.attempt - 1]
                delivery.attempt += 1
                self._at(time.monotonic() + delay, ("send", delivery))


def _iso() -> str:
    return datetime.now(UTC).isoformat()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self._handle("POST")

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def _handle(self, method: str):
        fal: FakeFal = self.server.fal
        parts = urlsplit(self.path)
        path = parts.path.strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        kind = _kind(method, path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        call = Call(method, self.path, kind, dict(self.headers), body)
        with fal.lock:
            fal.calls.append(call)
        if fal.latency:
            time.sleep(fal.latency)
        if kind == "jwks":
            return self._reply(call, 200, fal.jwks())
        if kind == "file":
            with fal.lock:
                found = fal._files.get(parts.path)
            if found is None:
                return self._reply(call, 404, {"detail": "Not found"})
            return self._reply(call, 200, found[0], content_type=found[1])
        if fal.key and self.headers.get("Authorization") != f"Key {fal.key}":
            return self._reply(call, 401, {"detail": "Invalid key"})
        with fal.lock:
            faults = fal.faults.get(kind)
            fault = faults.pop(0) if faults else None
        if fault is not None:
            code, extra = fault
            return self._reply(call, code, extra["body"] or {"detail": f"fake fault {code}"}, headers=extra["headers"])
        if kind == "submit":
            webhook = parse_qs(parts.query).get("fal_webhook", [""])[0]
            request = fal.submit(path, body if isinstance(body, dict) else {}, webhook)
            base = f"{fal.base}/{request.app}/requests/{request.id}"
            return self._reply(
                call,
                200,
                {
                    "request_id": request.id,
                    "gateway_request_id": request.id,
                    "status": "IN_QUEUE",
                    "response_url": base,
                    "status_url": f"{base}/status",
                    "cancel_url": f"{base}/cancel",
                    "queue_position": 0,
                },
            )
        request_id = path.split("/requests/", 1)[1].split("/", 1)[0]
        with fal.lock:
            request = fal.requests.get(request_id)
        if request is None:
            return self._reply(call, 404, {"detail": "Request not found"})
        if kind == "status":
            answer = fal.status(request, logs=parse_qs(parts.query).get("logs", ["0"])[0] == "1")
            return self._reply(call, 200 if answer["status"] == "COMPLETED" else 202, answer)
        if kind == "cancel":
            return self._reply(call, *fal.cancel(request))
        state = fal.state(request_id)
        if state in ("IN_QUEUE", "IN_PROGRESS"):
            return self._reply(call, 400, {"detail": "Request is still in progress"})
        if state == "CANCELLED" or request.outcome == "error":
            return self._reply(call, 422, {"detail": [{"msg": "The request failed."}]})
        return self._reply(call, 200, fal.result(request))

    def _reply(self, call: Call, code: int, body, *, content_type="application/json", headers=None):
        call.status = code
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass

    def log_message(self, format, *args):
        pass


def _kind(method: str, path: str) -> str:
    if path == ".well-known/jwks.json":
        return "jwks"
    if path.startswith("files/"):
        return "file"
    if "/requests/" in path:
        if method == "PUT" and path.endswith("/cancel"):
            return "cancel"
        return "status" if path.endswith("/status") else "result"
    return "submit"


def main() -> None:  # pragma: no cover - a development tool
    parser = argparse.ArgumentParser(description="A fake fal.ai queue API for development.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--key", default="fal-dev-key")
    parser.add_argument("--queue-seconds", type=float, default=1.0)
    parser.add_argument("--run-seconds", type=float, default=5.0)
    args = parser.parse_args()
    fal = FakeFal(key=args.key, host=args.host, port=args.port)
    fal.queue_seconds, fal.run_seconds = args.queue_seconds, args.run_seconds
    with fal:
        print(f"fake fal on {fal.base} (FAL_QUEUE_URL), JWKS {fal.jwks_url} (FAL_JWKS_URL), FAL_KEY={fal.key}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
