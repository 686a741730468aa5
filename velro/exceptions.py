"""One exception handler for the whole API.

Every error leaves as JSON of one shape::

    {"detail": "<one sentence>", "code": "<machine code>", "errors": {"field": ["message"]}}

``errors`` is present for validation failures only. Django's own ``ValidationError``,
``Http404``, ``PermissionDenied`` and ``ProtectedError`` are mapped here, as are the
domain errors of ``ApplicationError``, so a service never has to know about HTTP.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback


class ApplicationError(Exception):
    """A domain rule was broken; subclasses set the HTTP status and a code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class IdempotencyConflict(ApplicationError):
    """An Idempotency-Key reused with another request (as Stripe refuses it)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


class InsufficientCredits(ApplicationError):
    """The balance does not cover the charge; nothing was written."""

    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_code = "insufficient_credits"


class StorageQuotaExceeded(ApplicationError):
    """The person's stored files already take their storage quota (MEDIA_QUOTA_BYTES)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "storage_quota_exceeded"


def _flatten(messages) -> list[str]:
    """Every field's errors as a list of strings: a list or dict field's per-item errors
    ({"0": ["…"]}) become "0: …", so clients read one shape."""
    if isinstance(messages, dict):
        return [f"{key}: {text}" for key, value in messages.items() for text in _flatten(value)]
    if isinstance(messages, list):
        flat: list[str] = []
        for index, item in enumerate(messages):
            if isinstance(item, dict | list) and item:
                flat.extend(f"{index}: {text}" for text in _flatten(item))
            elif not isinstance(item, dict | list):
                flat.append(str(item))
        return flat
    return [str(messages)]


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for field, value in errors.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        body = {"detail": "The request body is too large.", "code": "too_large"}
        return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    elif isinstance(exc, TooManyFieldsSent):
        return Response({"detail": "Too many form fields.", "code": "parse_error"}, status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, ProtectedError):
        body = {"detail": "This object is still referenced and cannot be deleted.", "code": "protected"}
        set_rollback()
        return Response(body, status=status.HTTP_409_CONFLICT)

    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message, "code": exc.code, **exc.extra}
        set_rollback()  # nothing half-written survives a refused request
        return Response(body, status=exc.status_code)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500

    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        errors = {field: _flatten(messages) for field, messages in errors.items()}
        response.data = {
            "detail": _first_message(errors),
            "code": "invalid",
            "errors": errors,
        }
    else:
        detail, codes = exc.detail, exc.get_codes()
        if isinstance(detail, dict) and "detail" in detail:
            # simplejwt's token errors nest their own {"detail", "code", "messages"}.
            detail, codes = detail["detail"], detail.get("code", codes)
        response.data = {
            "detail": str(detail) if not isinstance(detail, (list, dict)) else _first_message(detail),
            "code": str(codes) if isinstance(codes, str) else "error",
        }
    return response
