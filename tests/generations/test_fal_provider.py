"""FalProvider against a real local HTTP server that plays fal's queue API (no internet).

Each test scripts the fake's replies per endpoint (submit, status, result); the last reply
of a script repeats. The fake records every request it receives.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest

from generations.providers import get_provider
from generations.providers.base import ProviderError
from generations.providers.fal import FalProvider

KEY = "fal-test-key-0123456789abcdef"
REQUEST_ID = "req-123"
IMAGE_RESULT = {
    "images": [
        {"url": "https://v3.fal.media/files/a.jpg", "width": 1024, "height": 768, "content_type": "image/jpeg"},
        {"url": "https://v3.fal.media/files/b.png", "width": 1024, "height": 768, "content_type": "image/png"},
    ]
}


class FakeFal:
    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[str, list] = {}
        self.lock = threading.Lock()
        self.url = ""

    def submitted(self, *, status_url=True, response_url=True) -> dict:
        reply = {"request_id": REQUEST_ID, "status": "IN_QUEUE"}
        if status_url:
            reply["status_url"] = f"{self.url}/fal-ai/flux/requests/{REQUEST_ID}/status"
        if response_url:
            reply["response_url"] = f"{self.url}/fal-ai/flux/requests/{REQUEST_ID}"
        return reply

    def reply(self, kind: str) -> tuple:
        """The next scripted reply for ``kind``: ``(code, body[, delay])``; the last one repeats."""
        with self.lock:
            script = self.scripts[kind]
            return script.pop(0) if len(script) > 1 else script[0]

    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_POST(self):
        self._handle("submit")

    def do_GET(self):
        self._handle("status" if self.path.endswith("/status") else "result")

    def _handle(self, kind: str):
        fake: FakeFal = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with fake.lock:
            fake.requests.append(
                {
                    "kind": kind,
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(raw) if raw else None,
                }
            )
        code, body, *delay = fake.reply(kind)
        if delay:
            time.sleep(delay[0])
        if isinstance(body, str) and body in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED"}:
            body = {"status": body}
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout tests)
            pass

    def log_message(self, format, *args):  # keep test output quiet
        pass


@pytest.fixture
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.fake = fake = FakeFal()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.scripts = {
        "submit": [(200, fake.submitted())],
        "status": [(202, "IN_QUEUE"), (202, "IN_PROGRESS"), (200, "COMPLETED")],
        "result": [(200, IMAGE_RESULT)],
    }
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_provider(fake, sleeps):
    def make(**overrides) -> FalProvider:
        options = {"key": KEY, "base_url": fake.url, "timeout": 2.0, "poll_interval": 0.01, **overrides}
        provider = FalProvider(**options)

        def sleep(seconds: float) -> None:  # recorded; backoffs are not waited out
            sleeps.append(seconds)
            time.sleep(min(seconds, 0.01))

        provider._sleep = sleep
        return provider

    return make


def generation(kind="image", parameters=None, **fields):
    model = SimpleNamespace(
        pk="fal-ai/flux/dev" if kind == "image" else "fal-ai/kling-video/v2/master/text-to-video",
        kind=kind,
        supports_negative_prompt=fields.pop("supports_negative_prompt", False),
        supports_reference_image=fields.pop("supports_reference_image", False),
    )
    values = {"pk": "gen-1", "prompt": "a red fox in snow", "negative_prompt": "", "reference_image": ""}
    return SimpleNamespace(ai_model=model, parameters=parameters or {}, **{**values, **fields})


def test_image_success_maps_parameters_and_parses_outputs(fake, make_provider):
    params = {"width": 1024, "height": 768, "num_images": 2, "seed": 42, "guidance_scale": 3.5, "style": "ignored"}
    result = make_provider().run(generation(parameters=params))

    submit = fake.requests[0]
    assert submit["method"] == "POST" and submit["path"] == "/fal-ai/flux/dev"
    assert submit["body"] == {
        "prompt": "a red fox in snow",
        "image_size": {"width": 1024, "height": 768},
        "num_images": 2,
        "seed": 42,
        "guidance_scale": 3.5,
    }
    assert all(r["headers"]["Authorization"] == f"Key {KEY}" for r in fake.requests)
    assert fake.requests[-1]["path"] == f"/fal-ai/flux/requests/{REQUEST_ID}"
    assert result.provider_request_id == REQUEST_ID
    assert result.outputs == [
        {"url": "https://v3.fal.media/files/a.jpg", "mime_type": "image/jpeg", "width": 1024, "height": 768},
        {"url": "https://v3.fal.media/files/b.png", "mime_type": "image/png", "width": 1024, "height": 768},
    ]


def test_video_success(fake, make_provider):
    fake.scripts["result"] = [
        (200, {"video": {"url": "https://v3.fal.media/files/v.mp4", "content_type": "video/mp4", "file_size": 1234}})
    ]
    gen = generation("video", {"duration": 5, "aspect_ratio": "9:16", "seed": 7, "num_images": 3})

    result = make_provider().run(gen)

    assert fake.requests[0]["path"] == "/fal-ai/kling-video/v2/master/text-to-video"
    assert fake.requests[0]["body"] == {
        "prompt": "a red fox in snow",
        "duration": "5",
        "aspect_ratio": "9:16",
        "seed": 7,
    }
    assert result.outputs == [
        {
            "url": "https://v3.fal.media/files/v.mp4",
            "mime_type": "video/mp4",
            "width": 720,
            "height": 1280,
            "size": 1234,
            "duration": 5,
        }
    ]


@pytest.mark.parametrize(
    ("supported", "negative", "sent"),
    [(True, "blurry, text", True), (False, "blurry, text", False), (True, "", False)],
)
def test_negative_prompt_sent_only_when_supported(fake, make_provider, supported, negative, sent):
    make_provider().run(generation(negative_prompt=negative, supports_negative_prompt=supported))

    body = fake.requests[0]["body"]
    assert ("negative_prompt" in body) is sent
    if sent:
        assert body["negative_prompt"] == negative


@pytest.mark.parametrize(
    ("fields", "image_url"),
    [
        ({"reference_image_url": "https://cdn.example/ref.png"}, "https://cdn.example/ref.png"),
        ({}, None),  # no absolute URL available: skipped
        ({"reference_image_url": "https://cdn.example/ref.png", "supports_reference_image": False}, None),
    ],
)
def test_reference_image_url(fake, make_provider, fields, image_url):
    gen = generation(reference_image="references/2025/01/ref.png", **{"supports_reference_image": True, **fields})
    make_provider().run(gen)

    assert fake.requests[0]["body"].get("image_url") == image_url


def test_polls_until_completed(fake, make_provider, sleeps):
    fake.scripts["status"] = [(202, "IN_QUEUE")] * 3 + [(202, "IN_PROGRESS")] * 2 + [(200, "COMPLETED")]

    make_provider().run(generation())

    assert fake.kinds() == ["submit"] + ["status"] * 6 + ["result"]
    assert all(r["path"] == f"/fal-ai/flux/requests/{REQUEST_ID}/status" for r in fake.requests[1:-1])
    assert len(sleeps) == 5 and all(0 < s <= 0.01 for s in sleeps)


def test_fallback_queue_urls_use_the_app_id(fake, make_provider):
    fake.scripts["submit"] = [(200, fake.submitted(status_url=False, response_url=False))]

    make_provider().run(generation())

    paths = [r["path"] for r in fake.requests[1:]]
    assert paths[0] == f"/fal-ai/flux/requests/{REQUEST_ID}/status"
    assert paths[-1] == f"/fal-ai/flux/requests/{REQUEST_ID}"


def test_timeout_is_retryable_and_names_the_request(fake, make_provider):
    fake.scripts["status"] = [(202, "IN_PROGRESS")]
    started = time.monotonic()

    with pytest.raises(ProviderError, match="timed out") as caught:
        make_provider(timeout=0.2).run(generation())

    assert 0.2 <= time.monotonic() - started < 1.5
    assert caught.value.retryable is True
    assert caught.value.provider_request_id == REQUEST_ID
    assert "result" not in fake.kinds()


def test_server_errors_are_retried_with_backoff(fake, make_provider, sleeps):
    fake.scripts["submit"] = [(500, "boom"), (503, "busy"), (200, fake.submitted())]
    fake.scripts["status"] = [(502, "bad gateway"), (200, "COMPLETED")]
    fake.scripts["result"] = [(429, {"detail": "slow down"}), (200, IMAGE_RESULT)]

    result = make_provider().run(generation())

    assert fake.kinds() == ["submit"] * 3 + ["status"] * 2 + ["result"] * 2
    assert len(result.outputs) == 2
    assert sleeps == [0.5, 1.0, 0.5, 0.5]  # exponential per call: submit 0.5, 1.0; status 0.5; result 0.5


def test_repeated_server_errors_give_up(fake, make_provider, sleeps):
    fake.scripts["result"] = [(500, {"detail": "internal"})]

    with pytest.raises(ProviderError, match="HTTP 500 after 3 attempts") as caught:
        make_provider(max_retries=2).run(generation())

    assert fake.kinds().count("result") == 3
    assert sleeps[-2:] == [0.5, 1.0]
    assert caught.value.retryable is True
    assert caught.value.provider_request_id == REQUEST_ID


@pytest.mark.parametrize("code", [401, 403])
def test_rejected_key_fails_at_once_without_leaking_it(fake, make_provider, caplog, code):
    fake.scripts["submit"] = [(code, {"detail": f"Invalid key {KEY}"})]

    with caplog.at_level("INFO"), pytest.raises(ProviderError, match="rejected the API key") as caught:
        make_provider().run(generation())

    message = str(caught.value)
    assert f"HTTP {code}" in message and "FAL_KEY" in message
    assert KEY not in message and KEY not in caplog.text
    assert "fal failed" in caplog.text
    assert fake.kinds() == ["submit"]


def test_client_error_fails_at_once_with_an_excerpt(fake, make_provider, sleeps):
    fake.scripts["result"] = [(422, {"detail": [{"msg": "prompt is too long"}]})]

    with pytest.raises(ProviderError, match="HTTP 422.*prompt is too long") as caught:
        make_provider().run(generation())

    assert fake.kinds().count("result") == 1 and sleeps == [0.01, 0.01]  # only the two poll waits
    assert caught.value.retryable is False
    assert caught.value.provider_request_id == REQUEST_ID


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ((200, {"images": []}), "has no images"),
        ((200, {"detail": "nothing"}), "has no images"),
        ((200, {"images": [{"width": 10, "height": 10}]}), "without a valid url"),
        ((200, {"images": ["https://v3.fal.media/a.jpg"]}), "not an object"),
        ((200, {"images": [{"url": "https://v3.fal.media/a.jpg", "width": "big", "height": 5}]}), "width and height"),
        ((200, "<html>not json"), "not valid JSON"),
        ((200, [1, 2]), "not a JSON object"),
    ],
)
def test_malformed_result(fake, make_provider, reply, problem):
    fake.scripts["result"] = [reply]

    with pytest.raises(ProviderError, match=problem) as caught:
        make_provider().run(generation())

    assert caught.value.provider_request_id == REQUEST_ID


def test_malformed_video_result(fake, make_provider):
    fake.scripts["result"] = [(200, {"video": "https://v3.fal.media/v.mp4"})]

    with pytest.raises(ProviderError, match="has no video") as caught:
        make_provider().run(generation("video", {"duration": 5}))

    assert caught.value.provider_request_id == REQUEST_ID


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ({"status": "FAILED"}, "unexpected status 'FAILED'"),
        ({"status": ["IN_QUEUE"]}, "unexpected status"),
        ({"status": "COMPLETED", "error": "NSFW"}, "failed: NSFW"),
    ],
)
def test_failed_status(fake, make_provider, status, problem):
    fake.scripts["status"] = [(200, status)]

    with pytest.raises(ProviderError, match=problem) as caught:
        make_provider().run(generation())

    assert caught.value.provider_request_id == REQUEST_ID
    assert "result" not in fake.kinds()


def test_submit_without_request_id(fake, make_provider):
    fake.scripts["submit"] = [(200, {"status": "IN_QUEUE"})]

    with pytest.raises(ProviderError, match="no request_id"):
        make_provider().run(generation())

    assert fake.kinds() == ["submit"]


def test_queue_url_on_another_host_is_refused(fake, make_provider):
    # A loopback address with a closed port: even a bug here would not reach the internet.
    fake.scripts["submit"] = [(200, {**fake.submitted(), "status_url": "http://127.0.0.2:9/x/requests/1/status"})]

    with pytest.raises(ProviderError, match="refusing to send the API key") as caught:
        make_provider().run(generation())

    assert caught.value.provider_request_id == REQUEST_ID
    assert fake.kinds() == ["submit"]


def test_connection_refused(sleeps):
    with socket.socket() as sock:  # a port that was free a moment ago and now has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = FalProvider(key=KEY, base_url=f"http://127.0.0.1:{port}", timeout=30.0, poll_interval=0.01)
    provider._sleep = sleeps.append

    with pytest.raises(ProviderError, match="ConnectError") as caught:
        provider.run(generation())

    assert caught.value.retryable is True
    assert sleeps == [0.5, 1.0, 2.0]  # max_retries=3: four attempts


def test_submit_read_timeout_is_not_resent(fake, make_provider):
    fake.scripts["submit"] = [(200, fake.submitted(), 0.3)]
    client = httpx.Client(timeout=httpx.Timeout(0.1))

    with client, pytest.raises(ProviderError, match="may have been queued") as caught:
        make_provider(client=client).run(generation())

    assert caught.value.retryable is False
    assert fake.kinds() == ["submit"]


def test_missing_key(fake, make_provider):
    with pytest.raises(ProviderError, match="FAL_KEY is not configured"):
        make_provider(key="").run(generation())

    assert fake.requests == []


def test_from_settings(settings):
    settings.GENERATION_PROVIDER = "fal"
    settings.FAL_KEY = KEY
    settings.FAL_QUEUE_URL = ""
    settings.FAL_TIMEOUT = 12

    provider = get_provider(SimpleNamespace(pk="fal-ai/flux/dev", provider="fal"))

    assert isinstance(provider, FalProvider) and provider.name == "fal"
    assert provider.base_url == "https://queue.fal.run"
    assert provider.timeout == 12.0
