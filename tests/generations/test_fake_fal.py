"""The fake fal itself (tests/fakes/fal.py) speaks fal's queue wire format and signs its
webhooks as fal does: checked here with plain httpx and cryptography, not the app's code."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.fakes.fal import FakeFal, signed_message
from tests.helpers import wait_for

KEY = {"Authorization": "Key fal-test-key"}


@pytest.fixture
def fal():
    with FakeFal() as fake:
        yield fake


class Receiver:
    """A webhook endpoint on loopback that answers ``answer`` and keeps what it got."""

    def __init__(self, answer=200):
        self.received: list[tuple[dict, bytes]] = []
        self.answer = answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def wait(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= count, self.received


def verify(fal: FakeFal, headers: dict, body: bytes) -> bool:
    """fal's documented check, step by step, against the fake's published JWKS."""
    keys = httpx.get(fal.jwks_url).json()["keys"]
    message = signed_message(
        headers["X-Fal-Webhook-Request-Id"], headers["X-Fal-Webhook-User-Id"], headers["X-Fal-Webhook-Timestamp"], body
    )
    for jwk in keys:
        raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message)
            return True
        except InvalidSignature:
            continue
    return False


def next_status(url: str, after: str) -> dict:
    """The request's status once it is no longer ``after`` (polled: fixed sleeps between
    the fake's phases fail on a busy machine, as CI's two lanes at once showed)."""
    return wait_for(
        lambda: (found := httpx.get(url, headers=KEY).json())["status"] != after and found,
        timeout=10,
        what=f"the request to leave {after}",
    )


def test_submit_status_result_in_fals_shape(fal):
    fal.queue_seconds, fal.run_seconds = 1.0, 1.5
    submitted = httpx.post(f"{fal.base}/fal-ai/flux/dev", json={"prompt": "a fox"}, headers=KEY).json()
    assert set(submitted) >= {"request_id", "status_url", "response_url", "cancel_url", "gateway_request_id"}
    # Status and result live under the app id, not the model's subpath.
    assert submitted["status_url"] == f"{fal.base}/fal-ai/flux/requests/{submitted['request_id']}/status"
    queued = httpx.get(submitted["status_url"], headers=KEY).json()
    assert queued["status"] == "IN_QUEUE" and queued["queue_position"] == 0
    assert httpx.get(submitted["response_url"], headers=KEY).status_code == 400
    running = next_status(submitted["status_url"] + "?logs=1", after="IN_QUEUE")
    assert running["status"] == "IN_PROGRESS"
    assert all(line["message"].startswith("step ") for line in running["logs"])
    done = next_status(submitted["status_url"], after="IN_PROGRESS")
    assert done["status"] == "COMPLETED" and done["metrics"]["inference_time"] == 1.5
    result = httpx.get(submitted["response_url"], headers=KEY).json()
    assert httpx.get(result["images"][0]["url"]).content.startswith(b"\x89PNG")


def test_queue_positions_count_the_requests_ahead(fal):
    fal.queue_seconds = 5
    urls = [httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY).json()["status_url"] for _ in range(3)]
    assert [httpx.get(url, headers=KEY).json()["queue_position"] for url in urls] == [0, 1, 2]


def test_cancel_answers_as_fal_does(fal):
    fal.queue_seconds, fal.run_seconds = 5, 0.2
    queued = httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY).json()
    answer = httpx.put(queued["cancel_url"], headers=KEY)
    assert (answer.status_code, answer.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    fal.queue_seconds, fal.run_seconds = 0, 5
    running = httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY).json()
    time.sleep(0.05)
    assert httpx.put(running["cancel_url"], headers=KEY).status_code == 400
    fal.run_seconds = 0
    done = httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY).json()
    time.sleep(0.05)
    answer = httpx.put(done["cancel_url"], headers=KEY)
    assert (answer.status_code, answer.json()) == (400, {"status": "ALREADY_COMPLETED"})


def test_faults_and_the_key(fal):
    fal.fail("submit", 429, retry_after=2)
    fal.fail("submit", 503)
    first = httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY).status_code == 503
    assert httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers=KEY).status_code == 200
    assert httpx.post(f"{fal.base}/fal-ai/flux/dev", json={}, headers={"Authorization": "Key nope"}).status_code == 401


def test_webhooks_are_signed_as_fal_signs_them_and_retried(fal):
    receiver = Receiver(answer=500)
    fal.webhook_retry_delays = [0.1]
    request_id = httpx.post(
        f"{fal.base}/fal-ai/flux/dev", params={"fal_webhook": receiver.url}, json={"prompt": "x"}, headers=KEY
    ).json()["request_id"]
    receiver.wait(2)  # refused once, so delivered again
    (h1, b1), (h2, b2) = receiver.received[:2]
    assert b1 == b2 and json.loads(b1)["request_id"] == request_id and json.loads(b1)["status"] == "OK"
    assert verify(fal, h1, b1) and verify(fal, h2, b2)
    assert verify(fal, h1, b1 + b" ") is False  # the body's hash is signed
    fal.rotate_key(keep_old=False)
    assert verify(fal, h1, b1) is False  # an unpublished key verifies nothing


def test_webhooks_twice_held_and_out_of_order(fal):
    receiver = Receiver()
    fal.webhook_copies, fal.hold_webhooks, fal.outcome = 2, True, "error"
    ids = [
        httpx.post(f"{fal.base}/m/x", params={"fal_webhook": receiver.url}, json={}, headers=KEY).json()["request_id"]
        for _ in range(2)
    ]
    # Both finish after run_seconds (0.3 s), a busy machine later.
    wait_for(lambda: len(fal.held) >= 4, timeout=10, what="fal to hold both webhooks, twice")
    assert receiver.received == [] and len(fal.held) == 4
    fal.flush_webhooks("reverse")
    receiver.wait(4)
    bodies = [json.loads(body) for _, body in receiver.received]
    assert sorted(b["request_id"] for b in bodies) == sorted(ids * 2)
    assert all(b["status"] == "ERROR" and b["error"] for b in bodies)
