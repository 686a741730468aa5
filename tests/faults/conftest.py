"""Shared pieces of the fault tests: threads on their own connections, a fake fal.ai
queue server whose behaviour each generation picks through its prompt (polling:
tests.helpers.wait_for)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FAL_KEY = "fal-faults-key-0123456789"
# The image every good job returns: ``url`` is set to the fake CDN's by the fake_fal fixture.
IMAGE_PATH = "/files/fault.png"
IMAGE = {"url": "", "width": 64, "height": 64, "content_type": "image/png"}


class FakeFal:
    """What the fake fal.ai queue does for a job is named by the job's prompt:

    ``ok``             submit, COMPLETED, a valid image result
    ``flaky``          the first submit is a 503 (then as ``ok``)
    ``hang``           IN_PROGRESS forever (the provider times out; or the worker is killed)
    ``submit-500``     every submit is a 500: no request id is ever known
    ``result-500``     the job completes but fetching its result is always a 500
    ``malformed``      the result is not JSON
    ``bad-shape``      the result is JSON without a usable image
    ``provider-error`` fal reports the job COMPLETED with an error
    ``no-request-id``  the submit reply names no request id
    ``stall``          status requests get no answer (until the test ends)
    """

    def __init__(self):
        self.url = ""
        self.image = dict(IMAGE)
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"kind", "behaviour", "request_id", "code"}
        self.jobs: dict[str, str] = {}  # request id → behaviour
        self.counts: dict[tuple[str, str], int] = {}
        self.release = threading.Event()  # set at teardown: stalled replies go out

    def of(self, behaviour: str, kind: str | None = None) -> list[dict]:
        return [r for r in self.requests if r["behaviour"] == behaviour and (kind is None or r["kind"] == kind)]

    def reply(self, kind: str, path: str, body: dict | None) -> tuple[int, object, str, str]:
        with self.lock:
            if kind == "submit":
                behaviour = str((body or {}).get("prompt", "ok"))
                request_id = ""
            else:
                request_id = path.split("/requests/", 1)[1].split("/", 1)[0]
                behaviour = self.jobs.get(request_id, "unknown")
            seen = self.counts[(behaviour, kind)] = self.counts.get((behaviour, kind), 0) + 1

            if kind == "submit":
                if behaviour == "submit-500" or (behaviour == "flaky" and seen == 1):
                    return 500 if behaviour == "submit-500" else 503, {"detail": "queue unavailable"}, behaviour, ""
                if behaviour == "no-request-id":
                    return 200, {"status": "IN_QUEUE"}, behaviour, ""
                request_id = f"req-{len(self.jobs) + 1}-{behaviour}"
                self.jobs[request_id] = behaviour
                base = f"{self.url}/test/requests/{request_id}"
                reply = {"request_id": request_id, "status_url": f"{base}/status", "response_url": base}
                return 200, reply, behaviour, request_id
            if kind == "cancel":  # fal cancels only a queued request; these all run
                return 400, {"status": "IN_PROGRESS"}, behaviour, request_id
            if kind == "status":
                if behaviour == "stall":
                    return 200, {"status": "IN_PROGRESS"}, behaviour, request_id
                if behaviour == "hang":
                    return 200, {"status": "IN_PROGRESS"}, behaviour, request_id
                if behaviour == "provider-error":
                    return 200, {"status": "COMPLETED", "error": "NSFW content detected"}, behaviour, request_id
                return 200, {"status": "COMPLETED"}, behaviour, request_id
            # result
            if behaviour == "result-500":
                return 500, {"detail": "result store down"}, behaviour, request_id
            if behaviour == "malformed":
                return 200, "<html>502 Bad Gateway</html>", behaviour, request_id
            if behaviour == "bad-shape":
                return (
                    200,
                    {"images": [{"url": "ftp://nowhere/a.png", "width": 64, "height": 64}]},
                    behaviour,
                    request_id,
                )
            return 200, {"images": [self.image]}, behaviour, request_id


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self._handle("submit")

    def do_GET(self):
        # fal's status URL takes ?logs=1 (the worker asks for the logs: progress).
        self._handle("status" if self.path.split("?", 1)[0].endswith("/status") else "result")

    def do_PUT(self):
        self._handle("cancel")

    def _handle(self, kind: str):
        fake: FakeFal = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        code, reply, behaviour, request_id = fake.reply(kind, self.path, body)
        with fake.lock:
            fake.requests.append({"kind": kind, "behaviour": behaviour, "request_id": request_id, "code": code})
        if behaviour == "stall" and kind == "status":
            fake.release.wait(120)
        data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client went away (a killed worker)
            pass

    def log_message(self, format, *args):
        pass


@pytest.fixture
def fake_fal(fake_cdn):
    from tests.fakes.cdn import image_bytes

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.fake = fake = FakeFal()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.image["url"] = fake_cdn.put(IMAGE_PATH, image_bytes((64, 64)), "image/png")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _no_internet_password_check(settings):
    # Never the real leaked-password API from tests: the bundled list only.
    settings.PASSWORD_BREACH_CHECK = False
