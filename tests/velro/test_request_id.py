"""Request ids: in the X-Request-ID response header of every response (generated, or the
caller's when it is a safe token), and on every log line written while serving it."""

import json
import logging
import re

import pytest
from django.conf import settings
from django.http import JsonResponse
from django.test import Client
from django.urls import include, path

from velro.logging import JsonFormatter, PlainFormatter, RequestIdFilter, build_config, get_request_id, request_id_var
from velro.middleware import clean_request_id

GENERATED = re.compile(r"[0-9a-f]{32}")
logger = logging.getLogger("velro.tests.request_id")


def logging_view(request):
    logger.info("inside the view")
    return JsonResponse({"request_id": get_request_id()})


def failing_view(request):
    raise RuntimeError("boom")


# A URLconf for the tests that need their own views (@pytest.mark.urls(__name__)).
urlpatterns = [
    path("log", logging_view),
    path("fail", failing_view),
    path("api/v1/", include("velro.api_urls")),
]


class Records(logging.Handler):
    """Collects records the way a configured handler sees them: after the id filter."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def records():
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.mark.parametrize(
    "url, headers, status",
    [
        ("/api/v1/models", {}, 200),
        ("/api/v1/me", {}, 401),
        ("/api/v1/no-such-endpoint", {}, 404),
        ("/no-such-page", {}, 404),
    ],
)
def test_every_response_gets_a_generated_id(api, db, url, headers, status):
    first = api.get(url, **headers)
    second = api.get(url, **headers)
    assert first.status_code == second.status_code == status
    assert GENERATED.fullmatch(first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize("url, status", [("/api/v1/models", 200), ("/api/v1/me", 401), ("/api/v1/nope", 404)])
def test_a_valid_incoming_id_is_echoed(api, db, url, status):
    response = api.get(url, HTTP_X_REQUEST_ID="edge-proxy.42_Ab")
    assert response.status_code == status
    assert response["X-Request-ID"] == "edge-proxy.42_Ab"


@pytest.mark.parametrize("value", ["x" * 65, "has space", "semi;colon", 'quote"d', "ünïcode", "line\nbreak", ""])
def test_an_unsafe_incoming_id_is_replaced(api, db, value):
    response = api.get("/api/v1/models", HTTP_X_REQUEST_ID=value)
    assert response.status_code == 200
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_clean_request_id():
    assert clean_request_id("a" * 64) == "a" * 64
    assert clean_request_id("a" * 65) is None
    assert clean_request_id("abc\n") is None
    assert clean_request_id(None) is None


@pytest.mark.urls(__name__)
def test_log_lines_during_a_request_carry_its_id(db, records):
    response = Client().get("/log", HTTP_X_REQUEST_ID="trace-7")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "trace-7"
    assert response.json() == {"request_id": "trace-7"}  # the view sees it too
    ours = [r for r in records if r.name == logger.name]
    assert [r.request_id for r in ours] == ["trace-7"]
    assert get_request_id() == "-"  # reset after the request

    logger.info("outside any request")
    assert records[-1].request_id == "-"


@pytest.mark.urls(__name__)
def test_error_responses_carry_the_id_in_header_and_logs(db, records):
    client = Client(raise_request_exception=False)
    response = client.get("/fail", HTTP_X_REQUEST_ID="crash-1")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "crash-1"
    errors = [r for r in records if r.name == "django.request" and r.levelno == logging.ERROR]
    assert errors and all(r.request_id == "crash-1" for r in errors)


def test_django_request_logs_written_after_the_middleware_carry_the_id(api, db, records):
    # DRF's 404 is a normal response; Django logs it after the middleware returned.
    response = api.get("/api/v1/nope", HTTP_X_REQUEST_ID="late-log")
    assert response.status_code == 404
    warnings = [r for r in records if r.name == "django.request" and "Not Found" in r.getMessage()]
    assert warnings and all(r.request_id == "late-log" for r in warnings)


def test_every_configured_handler_has_the_filter():
    assert all("request_id" in handler.get("filters", []) for handler in settings.LOGGING["handlers"].values())
    ours = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert ours, "the settings' console handler is on the root logger"
    assert all(any(isinstance(f, RequestIdFilter) for f in h.filters) for h in ours)
    # Django's own loggers go through the root's handler instead of their own.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate


def make_record(**extra) -> logging.LogRecord:
    try:
        raise ValueError("bad value")
    except ValueError:
        import sys

        record = logging.getLogger("velro.services").makeRecord(
            "velro.services", logging.ERROR, __file__, 1, "charged %s credits", (25,), sys.exc_info(), extra=extra
        )
    RequestIdFilter().filter(record)
    return record


def test_json_formatter_writes_one_object_with_the_id():
    token = request_id_var.set("json-1")
    try:
        record = make_record(request=object(), status_code=402)
    finally:
        request_id_var.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "ERROR"
    assert data["logger"] == "velro.services"
    assert data["message"] == "charged 25 credits"
    assert data["request_id"] == "json-1"
    assert "ValueError: bad value" in data["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", data["time"])
    assert data["status_code"] == 402  # JSON-friendly extras are kept …
    assert "request" not in data  # … Django's request object is not


def test_formatters_outside_requests_say_dash():
    record = make_record()
    assert json.loads(JsonFormatter().format(record))["request_id"] == "-"
    assert "[-] velro.services charged 25 credits" in PlainFormatter().format(record)
    # A record that never met the filter still formats.
    bare = logging.makeLogRecord({"msg": "bare", "levelname": "INFO", "levelno": logging.INFO})
    assert json.loads(JsonFormatter().format(bare))["request_id"] == "-"
    assert "[-]" in PlainFormatter().format(bare)


def test_build_config_refuses_unknown_formats():
    with pytest.raises(ValueError):
        build_config("xml")
    assert build_config("json")["handlers"]["console"]["formatter"] == "json"
    assert "gunicorn.access" in build_config("plain", gunicorn=True)["loggers"]


def test_an_unreachable_database_is_a_503_with_retry_after(alice, api_as, monkeypatch):
    from django.db import OperationalError

    from generations.views import GenerationViewSet

    def down(self, request, *args, **kwargs):
        raise OperationalError("connection to server on socket failed: No such file or directory")

    monkeypatch.setattr(GenerationViewSet, "list", down)
    response = api_as(alice).get("/api/v1/generations")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The service is temporarily unavailable; try again shortly.",
        "code": "unavailable",
    }
    assert response["Retry-After"] == "5"
    assert response["X-Request-ID"]
