"""Request ids: every request gets one, every log line of it carries it, every response
returns it in ``X-Request-ID``.

An incoming ``X-Request-ID`` (from a proxy or the client) is kept when it is a safe token
(≤ 64 characters of ``A-Z a-z 0-9 . _ -``), so one id follows a request across services;
anything else is replaced by a fresh uuid4 hex, never echoed.
"""

import re
import uuid

from velro.logging import request_id_var

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
