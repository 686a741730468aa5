"""Shared pieces of the OpenAPI description (drf-spectacular): the error shape, error
responses with examples, and the views serving the schema and its offline UIs."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers

from velro.rls import RLSViewMixin

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(help_text="One sentence for people."),
        "code": serializers.CharField(help_text="A machine code, e.g. not_found, invalid, throttled."),
    },
)
ValidationErrorSerializer = inline_serializer(
    name="ValidationError",
    fields={
        "detail": serializers.CharField(help_text="The first problem, as one sentence."),
        "code": serializers.CharField(default="invalid"),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Messages by field; non_field_errors for the request as a whole. "
            "Absent when the body could not be read at all (code parse_error).",
        ),
    },
)

_ERRORS = {
    400: (
        "Invalid input: field messages in `errors`.",
        ValidationErrorSerializer,
        {
            "detail": "name: This field may not be blank.",
            "code": "invalid",
            "errors": {"name": ["This field may not be blank."]},
        },
    ),
    401: (
        "Not signed in, or the token is invalid or expired.",
        ErrorSerializer,
        {
            "detail": "Authentication credentials were not provided.",
            "code": "not_authenticated",
        },
    ),
    402: (
        "The credit balance does not cover the charge; nothing was written.",
        ErrorSerializer,
        {
            "detail": "Insufficient credits: the balance is 20, this needs 25.",
            "code": "insufficient_credits",
            "balance": 20,
            "required": 25,
        },
    ),
    403: (
        "Signed in, but not allowed to do this.",
        ErrorSerializer,
        {
            "detail": "You do not have permission to perform this action.",
            "code": "permission_denied",
        },
    ),
    404: (
        "Not found — also for objects that belong to someone else, and for a page or cursor past the list.",
        ErrorSerializer,
        {
            "detail": "Not found.",
            "code": "not_found",
        },
    ),
    409: (
        "The object is not in a state that allows this.",
        ErrorSerializer,
        {
            "detail": "Only a pending generation can be cancelled; this one is processing.",
            "code": "conflict",
        },
    ),
    422: (
        "The request conflicts with an earlier one (an Idempotency-Key reused with another body).",
        ErrorSerializer,
        {
            "detail": "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request.",
            "code": "idempotency_key_reused",
        },
    ),
    429: (
        "Too many requests; retry after the Retry-After header's seconds.",
        ErrorSerializer,
        {
            "detail": "Request was throttled. Expected available in 42 seconds.",
            "code": "throttled",
        },
    ),
    503: (
        "A dependency (the database) is unavailable.",
        ErrorSerializer,
        {
            "detail": "Service unavailable.",
            "code": "unavailable",
        },
    ),
}


def add_unsupported_media_type(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation that takes a body can answer
    415 (a body in a media type the endpoint does not parse, e.g. none at all)."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["responses"].setdefault(
                    "415",
                    {
                        "description": "The body's Content-Type is not one this endpoint reads.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result


def errors(*codes: int) -> dict:
    """Error responses for ``extend_schema(responses=...)``, each with its example."""
    return {
        code: OpenApiResponse(
            response=_ERRORS[code][1],
            description=_ERRORS[code][0],
            examples=[OpenApiExample(f"{code}", value=_ERRORS[code][2], response_only=True, status_codes=[str(code)])],
        )
        for code in codes
    }


class WebhookSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "generations.webhooks.SignatureAuthentication"
    name = "webhookSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Velro-Signature",
            "description": 't=<unix seconds>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>." + body)>',
        }


class JWTScheme(SimpleJWTScheme):
    """accounts.authentication.JWTAuthentication is simplejwt's, documented the same way."""

    target_class = "accounts.authentication.JWTAuthentication"


# The schema and UIs are API views under /api/ like any other, so they carry the RLS
# glue too (they read no data; they run as anon).
class SchemaView(RLSViewMixin, SpectacularAPIView):
    pass


class SwaggerView(RLSViewMixin, SpectacularSwaggerView):
    pass


class RedocView(RLSViewMixin, SpectacularRedocView):
    template_name = "velro/redoc.html"  # no web fonts from the internet
