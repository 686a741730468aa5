"""``POST /api/v1/webhooks/<provider>``: a provider reports a result.

Authenticated by an HMAC-SHA256 signature of the raw body, not by a user token::

    X-Velro-Signature: t=<unix seconds>,v1=<hex hmac_sha256(WEBHOOK_SECRET, "<t>." + body)>

A signature that is wrong, older than WEBHOOK_TOLERANCE seconds, or already used is a
401 and nothing changes. An accepted call runs as the database role ``service_role``
(the RLS glue maps the webhook principal to it) and moves the generation through the
same services as the worker, so a webhook racing a worker or a cancel refunds at most
once.

Body: ``{"request_id" | "generation_id", "status": "OK" | "ERROR", "payload": {...},
"error": "..."}`` — the payload in fal's result shape (``images`` or ``video``).
"""

import hashlib
import hmac
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.response import Response

from generations import services
from generations.models import Generation, WebhookDelivery
from generations.providers import ProviderError
from generations.providers.fal import parse_outputs
from velro.api import BaseAPIView
from velro.exceptions import Conflict
from velro.openapi import errors

SIGNATURE_HEADER = "X-Velro-Signature"


def sign(body: bytes, *, secret: str, timestamp: int | None = None) -> str:
    """The header value for ``body`` (used by tests and by anyone sending webhooks)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class ServicePrincipal:
    """Who a verified webhook is: the provider, acting as the service side."""

    is_authenticated = True
    is_active = True
    is_service = True
    pk = None

    def __init__(self, name: str, signature: str):
        self.name = name
        self.signature = signature


class SignatureAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = settings.WEBHOOK_SECRET
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not secret:
            raise exceptions.AuthenticationFailed("Webhooks are not configured.")
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            timestamp, given = int(parts["t"]), parts["v1"]
        except (KeyError, ValueError) as exc:
            raise exceptions.AuthenticationFailed(f"Missing or malformed {SIGNATURE_HEADER} header.") from exc
        if abs(time.time() - timestamp) > settings.WEBHOOK_TOLERANCE:
            raise exceptions.AuthenticationFailed("The signature has expired.")
        expected = sign(request.body, secret=secret, timestamp=timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, given):
            raise exceptions.AuthenticationFailed("Invalid signature.")
        return ServicePrincipal(request.parser_context["kwargs"]["provider"], given), None

    def authenticate_header(self, request):
        return SIGNATURE_HEADER


class IsService(permissions.BasePermission):
    def has_permission(self, request, view):
        return getattr(request.user, "is_service", False)


class WebhookInputSerializer(serializers.Serializer):
    request_id = serializers.CharField(max_length=200, required=False)
    generation_id = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=["OK", "ERROR"])
    payload = serializers.JSONField(required=False, default=dict)
    error = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs.get("request_id") and not attrs.get("generation_id"):
            raise serializers.ValidationError("Give request_id or generation_id.")
        return attrs


class ProviderWebhookView(BaseAPIView):
    authentication_classes = [SignatureAuthentication]
    permission_classes = [IsService]

    @extend_schema(
        summary="A provider reports a result",
        description=(
            'Signed with `X-Velro-Signature: t=<unix>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>." + body)>`. '
            "A wrong, expired (older than 5 minutes) or replayed signature is a 401 and changes nothing."
        ),
        tags=["webhooks"],
        request=WebhookInputSerializer,
        examples=[
            OpenApiExample(
                "completed",
                request_only=True,
                value={
                    "request_id": "764cabcf-b745-4b3e-ae38-1200304cf45b",
                    "status": "OK",
                    "payload": {"images": [{"url": "https://cdn.example/a.png", "width": 1024, "height": 1024}]},
                },
            ),
            OpenApiExample(
                "failed", request_only=True, value={"request_id": "764cabcf", "status": "ERROR", "error": "NSFW filter"}
            ),
        ],
        responses={
            200: inline_serializer(
                name="WebhookResult", fields={"id": serializers.UUIDField(), "status": serializers.CharField()}
            ),
            **errors(400, 401, 404, 409),
        },
    )
    def post(self, request, provider):
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(provider=provider, signature=request.user.signature)
        except IntegrityError as exc:
            raise exceptions.AuthenticationFailed("This delivery was already received (replay).") from exc

        data = WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lookup = (
            {"pk": data.validated_data["generation_id"]}
            if data.validated_data.get("generation_id")
            else {"provider_request_id": data.validated_data["request_id"]}
        )
        generation = Generation.objects.select_related("ai_model").filter(**lookup).first()
        if generation is None:
            raise exceptions.NotFound("No such generation.")
        if data.validated_data["status"] == "OK":
            try:
                outputs = parse_outputs(
                    generation.ai_model.kind,
                    data.validated_data["payload"],
                    generation.parameters or {},
                    data.validated_data.get("request_id", ""),
                )
            except ProviderError as exc:
                raise exceptions.ValidationError({"payload": [str(exc)]}) from exc
            done = services.generation_complete(
                generation=generation, outputs=outputs, provider_request_id=data.validated_data.get("request_id", "")
            )
        else:
            done = services.generation_fail(
                generation=generation,
                error=data.validated_data["error"] or "The provider reported an error.",
                from_statuses=[Generation.Status.PROCESSING],
            )
        if not done:
            raise Conflict(f"The generation is {generation.status}; the result was not applied.")
        generation.refresh_from_db()
        return Response({"id": str(generation.pk), "status": generation.status}, status=status.HTTP_200_OK)
