"""Request ids: every request gets one, every log line of it carries it, every response
returns it in ``X-Request-ID``.

An incoming ``X-Request-ID`` (from a proxy or the client) is kept when it is a safe token
(≤ 64 characters of ``A-Z a-z 0-9 . _ -``), so one id follows a request across services;
anything else is replaced by a fresh uuid4 hex, never echoed.
"""

import logging
import re
import uuid

from django.contrib.auth import middleware as _auth
from django.contrib.messages import middleware as _messages
from django.contrib.sessions import middleware as _sessions
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django_otp import middleware as _otp

from velro.logging import request_id_var

logger = logging.getLogger(__name__)

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def clean_request_id(value: str | None) -> str | None:
    """``value`` if it is an acceptable request id, else None."""
    if value and _VALID.fullmatch(value):
        return value
    return None


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_request_id(request.headers.get(HEADER)) or uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            # Django turns exceptions (404, 500 …) into responses below this point, so
            # error responses get the header too.
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request_id
        return response


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached is a 503 with ``Retry-After``, not a 500.

    With ATOMIC_REQUESTS the connection is opened around the view, so a stopped or
    restarting server surfaces as an OperationalError/InterfaceError from the view.
    Django discards a broken connection at the end of the request, so the next request
    reconnects: the app recovers by itself when the database is back.
    """

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.warning("database unavailable: %s", exception)
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {"detail": "The service is temporarily unavailable; try again shortly.", "code": "unavailable"},
                status=503,
            )
        else:
            response = HttpResponse("Service temporarily unavailable.", status=503, content_type="text/plain")
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response


class CleanQueryMiddleware:
    """NUL characters in an API URL never reach PostgreSQL (which cannot store them): in
    the path the URL cannot name anything (404); in the query string the parameter is
    named in a 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        if "\x00" in request.path:
            return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
        bad = [key for key, values in request.GET.lists() if "\x00" in key or any("\x00" in v for v in values)]
        if bad:
            message = "Null characters are not allowed."
            name = bad[0].replace("\x00", "")
            return JsonResponse(
                {"detail": f"{name}: {message}", "code": "invalid", "errors": {name: [message]}}, status=400
            )
        return self.get_response(request)


# --- browser-only middleware -------------------------------------------------------------

# The API's requests carry a bearer token and never a session cookie's state: DRF
# authenticates them (accounts.authentication) and sets request.user itself.
API_PREFIX = "/api/"


class BrowserOnlyMixin:
    """Skip this middleware for the API (``/api/``): sessions, the session's user and its
    second factor, and messages serve the admin's browsers only. Each API request paid
    for them (a session store, a lazy user, the messages' storage …: ~2 % of a GET list
    request's instructions, make bench). Subclasses keep the original's name and type, so
    the admin's checks (admin.E408–E410) still find them."""

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(BrowserOnlyMixin, _sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(BrowserOnlyMixin, _auth.AuthenticationMiddleware):
    pass


class OTPMiddleware(BrowserOnlyMixin, _otp.OTPMiddleware):
    pass


class MessageMiddleware(BrowserOnlyMixin, _messages.MessageMiddleware):
    pass
