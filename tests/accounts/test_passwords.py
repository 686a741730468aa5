"""BreachedPasswordValidator against a real local HTTP server that plays Have I Been
Pwned's range API (no internet), and its bundled fallback list."""

import gzip
import hashlib
import logging
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import django
import pytest
from django.contrib.auth.password_validation import get_default_password_validators, validate_password
from django.core.exceptions import ValidationError

from accounts import passwords
from accounts.models import User
from accounts.passwords import BreachedPasswordValidator, bundled_passwords

BREACHED = "Tr0ub4dor&3-horse"  # served by the fake with a count, absent from the bundled list
LISTED = "1987shadow"  # in the bundled list, not in Django's
DJANGO_LIST = Path(django.__file__).parent / "contrib" / "auth" / "common-passwords.txt.gz"


def sha1(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()


def strong_password() -> str:
    return "Vx-" + secrets.token_urlsafe(18)


class FakePwned:
    """The range API: ``GET /range/{prefix}`` → ``SUFFIX:COUNT`` lines for the known
    passwords with that prefix, plus padding lines of count 0. ``mode`` breaks it."""

    def __init__(self):
        self.counts: dict[str, int] = {}  # full SHA-1 (upper) → count
        self.requests: list[dict] = []
        self.mode = "ok"  # ok | 500 | garbage | empty | slow
        self.url = ""
        self.lock = threading.Lock()

    def breached(self, password: str, count: int):
        self.counts[sha1(password)] = count

    def answer(self, prefix: str) -> str:
        lines = [f"{digest[5:]}:{count}" for digest, count in self.counts.items() if digest.startswith(prefix)]
        # Padding as the real API adds it: random suffixes with count 0.
        lines += [f"{secrets.token_hex(18)[:35].upper()}:0" for _ in range(20)]
        return "\r\n".join(lines)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self):
        fake: FakePwned = self.server.fake
        with fake.lock:
            fake.requests.append({"path": self.path, "headers": dict(self.headers)})
        if fake.mode == "slow":
            time.sleep(4)
        status, body = 200, ""
        if fake.mode == "500":
            status, body = 500, "upstream broke"
        elif fake.mode == "garbage":
            body = "<html><body>Cloudflare says hi</body></html>"
        elif fake.mode in ("ok", "slow"):
            body = fake.answer(self.path.rsplit("/", 1)[-1])
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, format, *args):
        pass


@pytest.fixture
def fake(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.fake = fake = FakePwned()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/range/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    settings.PASSWORD_BREACH_CHECK = True
    settings.PASSWORD_BREACH_API_URL = fake.url
    # Room for a loaded CI machine to answer in time (0.5 s once timed a prompt answer
    # out), while a slow answer (4 s) is still cut short.
    settings.PASSWORD_BREACH_TIMEOUT = 1.5
    settings.PASSWORD_BREACH_THRESHOLD = 1
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def messages(password: str) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        BreachedPasswordValidator().validate(password)
    assert [error.code for error in raised.value.error_list] == ["password_breached"]
    return raised.value.messages


# --- the range API -------------------------------------------------------------------


def test_only_the_first_five_hex_characters_of_the_hash_leave(fake):
    fake.breached(BREACHED, 42)
    with pytest.raises(ValidationError):
        BreachedPasswordValidator().validate(BREACHED)

    (request,) = fake.requests
    digest = sha1(BREACHED)
    assert request["path"] == f"/range/{digest[:5]}"
    sent = request["path"] + repr(request["headers"])
    assert digest[5:] not in sent.upper() and digest[5:10] not in sent.upper()
    assert BREACHED not in sent and BREACHED.lower() not in sent.lower()
    assert request["headers"]["Add-Padding"] == "true"


def test_a_breached_password_is_refused_with_its_count(fake):
    fake.breached(BREACHED, 3_861_493)
    assert messages(BREACHED) == ["This password has appeared in a data breach 3,861,493 times; choose another."]


def test_one_sighting_reads_one_time(fake):
    fake.breached(BREACHED, 1)
    assert messages(BREACHED) == ["This password has appeared in a data breach 1 time; choose another."]


def test_a_password_the_api_does_not_know_is_accepted(fake):
    fake.breached(BREACHED, 42)
    password = strong_password()
    BreachedPasswordValidator().validate(password)  # no error
    assert [r["path"] for r in fake.requests] == [f"/range/{sha1(password)[:5]}"]


def test_the_threshold_is_the_minimum_count_that_refuses(fake, settings):
    settings.PASSWORD_BREACH_THRESHOLD = 10
    fake.breached(BREACHED, 9)
    BreachedPasswordValidator().validate(BREACHED)  # 9 < 10: accepted
    fake.breached(BREACHED, 10)
    assert "10 times" in messages(BREACHED)[0]


def test_the_answer_decides_while_the_api_is_up(fake):
    """A password only the bundled list has passes when the API says it is clean: the
    API's answer, not the list, is the check whenever there is one."""
    BreachedPasswordValidator().validate(LISTED)
    assert len(fake.requests) == 1


def test_the_url_may_lack_its_trailing_slash(fake, settings):
    settings.PASSWORD_BREACH_API_URL = fake.url.rstrip("/")
    fake.breached(BREACHED, 5)
    assert "5 times" in messages(BREACHED)[0]


# --- falling back to the bundled list --------------------------------------------------


@pytest.mark.parametrize("mode", ["slow", "500", "garbage", "empty", "unreachable"])
def test_without_a_usable_answer_the_bundled_list_decides(fake, settings, caplog, mode):
    fake.breached(LISTED, 42)  # were the API consulted, the count would show in the message
    fake.breached(BREACHED, 42)
    if mode == "unreachable":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings.PASSWORD_BREACH_API_URL = f"http://127.0.0.1:{port}/range/"
    else:
        fake.mode = mode

    with caplog.at_level(logging.WARNING, logger="accounts.passwords"):
        started = time.monotonic()
        listed = messages(LISTED)
        elapsed = time.monotonic() - started
        BreachedPasswordValidator().validate(BREACHED)  # unknown to the list: accepted
        BreachedPasswordValidator().validate(strong_password())

    assert listed == ["This password has appeared in a data breach; choose another."]
    assert elapsed < 3.5  # the timeout (1.5 s) cut the slow answer (4 s) short
    assert len(fake.requests) == (0 if mode == "unreachable" else 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("checking the bundled list instead" in w for w in warnings)


def test_with_the_check_off_no_request_is_made(fake, settings):
    settings.PASSWORD_BREACH_CHECK = False
    fake.breached(BREACHED, 42)

    assert messages(LISTED) == ["This password has appeared in a data breach; choose another."]
    BreachedPasswordValidator().validate(BREACHED)
    BreachedPasswordValidator().validate(strong_password())
    assert fake.requests == []


def test_the_list_check_ignores_case_and_surrounding_spaces(settings):
    settings.PASSWORD_BREACH_CHECK = False
    assert messages(" 1987SHADOW ") == ["This password has appeared in a data breach; choose another."]


# --- the bundled list ----------------------------------------------------------------


def test_the_bundled_list_is_larger_than_djangos_and_contains_it():
    with gzip.open(DJANGO_LIST, "rt", encoding="utf-8") as handle:
        django_list = {line.strip() for line in handle if line.strip()}
    bundled = bundled_passwords()

    assert len(bundled) > 200_000 and len(bundled) > 10 * len(django_list)
    assert django_list <= bundled
    assert {"1987shadow", "monkey_123", "shadow1952", "p@ssw0rd123", "qwerty123!"} <= bundled - django_list
    assert all(entry == entry.lower().strip() for entry in bundled)


def test_the_bundled_list_is_read_once(monkeypatch):
    bundled_passwords()  # loaded (possibly by an earlier test)

    def fail(*args, **kwargs):
        raise AssertionError("read the list again")

    monkeypatch.setattr(passwords.gzip, "open", fail)
    assert "1987shadow" in bundled_passwords()


def test_the_validator_is_configured_beside_djangos():
    names = [type(v).__name__ for v in get_default_password_validators()]
    assert {"BreachedPasswordValidator", "CommonPasswordValidator"} <= set(names)


def test_djangos_validate_password_runs_it(settings):
    settings.PASSWORD_BREACH_CHECK = False
    with pytest.raises(ValidationError) as raised:
        validate_password(LISTED)
    assert "This password has appeared in a data breach; choose another." in raised.value.messages


# --- through the API ----------------------------------------------------------------


def test_register_refuses_a_breached_password_with_a_field_message(db, api, fake):
    fake.breached(BREACHED, 7)

    response = api.post("/api/v1/auth/register", {"email": "new@example.com", "password": BREACHED}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "password": ["This password has appeared in a data breach 7 times; choose another."]
    }
    assert not User.objects.exists()
    assert len(fake.requests) == 1


def test_register_refuses_a_listed_password_while_the_api_is_down(db, api, fake):
    fake.mode = "500"

    response = api.post("/api/v1/auth/register", {"email": "new@example.com", "password": LISTED}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"password": ["This password has appeared in a data breach; choose another."]}
    assert not User.objects.exists()


def test_register_accepts_a_strong_password_while_the_api_is_down(db, api, fake):
    fake.mode = "slow"

    response = api.post(
        "/api/v1/auth/register", {"email": "new@example.com", "password": strong_password()}, format="json"
    )

    assert response.status_code == 201, response.content
    assert User.objects.filter(email="new@example.com").exists()
