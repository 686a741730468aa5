"""``POST /api/v1/webhooks/<provider>``: a provider reports a result.

Authenticated by an HMAC-SHA256 signature of the raw body, not by a user token::

    X-Velro-Signature: t=<unix seconds>,v1=<hex hmac_sha256(WEBHOOK_SECRET, "<t>." + body)>

A delivery's id is its signature's digest (``v1``). Every delivery whose header can be
read is recorded once in ``webhook_deliveries`` whatever becomes of it — applied, or
refused for a wrong or expired signature, an unknown generation, a generation in
another state, a bad payload — in a transaction of its own, so the refusal's rollback
does not take the record with it. A replay of a recorded delivery changes nothing and
says so (409, ``replayed_delivery``, with the first outcome); a signature older than
WEBHOOK_TOLERANCE seconds is a 401, so a captured delivery cannot be replayed later at
all. An accepted call runs as the database role ``service_role`` (the RLS glue maps the
webhook principal to it) and moves the generation through the same services as the
worker, so a webhook racing a worker or a cancel refunds at most once.

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
from generations.outputs import delete_quietly, store_outputs, stored_paths
from generations.providers import ProviderError
from generations.providers.fal import parse_outputs
from velro import metrics
from velro.api import BaseAPIView
from velro.exceptions import Conflict
from velro.openapi import errors

SIGNATURE_HEADER = "X-Velro-Signature"
# A webhook's result, ours and fal's alike (its OpenAPI enum: WebhookStatusEnum).
WEBHOOK_STATUSES = ["OK", "ERROR"]


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
        if not given or len(given) > 200:
            raise exceptions.AuthenticationFailed(f"Missing or malformed {SIGNATURE_HEADER} header.")
        # The delivery's id, for ProviderWebhookView.dispatch to record whatever happens next.
        request._request.velro_delivery_id = given
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
    status = serializers.ChoiceField(choices=WEBHOOK_STATUSES)
    payload = serializers.JSONField(required=False, default=dict)
    error = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs.get("request_id") and not attrs.get("generation_id"):
            raise serializers.ValidationError("Give request_id or generation_id.")
        return attrs


def _record_refused(*, provider: str, delivery_id: str, response) -> None:
    """Record a refused delivery, after its request's transaction rolled back. A
    delivery already recorded (the first of two racing copies) keeps its record."""
    data = getattr(response, "data", None) or {}
    reason = str(data.get("detail", "") if isinstance(data, dict) else data)[:300]
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                provider=provider,
                signature=delivery_id,
                outcome=WebhookDelivery.Outcome.REFUSED,
                status_code=response.status_code,
                reason=reason,
            )
        ],
        ignore_conflicts=True,
    )


def record_delivery(request, *, provider: str) -> None:
    """Record this delivery (by its signature) before anything else; a replay of a
    recorded one is a 409 ``replayed_delivery`` naming the first outcome.

    Inserted first: a concurrent copy of this delivery waits here for this transaction,
    then finds the record (or, if this one is refused and rolls back, goes on and is
    judged the same way)."""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(provider=provider, signature=request.user.signature)
    except IntegrityError:
        request._request.velro_delivery_seen = True
        first = WebhookDelivery.objects.get(signature=request.user.signature)
        outcome = first.outcome if not first.reason else f"{first.outcome}: {first.reason}"
        raise Conflict(
            f"This delivery was already received at {first.received_at:%Y-%m-%d %H:%M:%S} UTC ({outcome}); "
            "nothing changed.",
            code="replayed_delivery",
        ) from None


class ProviderWebhookView(BaseAPIView):
    authentication_classes = [SignatureAuthentication]
    permission_classes = [IsService]
    provider_name = ""

    @transaction.non_atomic_requests
    def dispatch(self, request, *args, **kwargs):
        # The request's transaction is opened here rather than by ATOMIC_REQUESTS, so a
        # refused delivery can be recorded after that transaction rolled back.
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
        delivery_id = getattr(request, "velro_delivery_id", None)
        seen = getattr(request, "velro_delivery_seen", False)
        provider = kwargs.get("provider", self.provider_name)[:40]
        if delivery_id and response.status_code >= 400 and not seen:
            with transaction.atomic():
                _record_refused(provider=provider, delivery_id=delivery_id, response=response)
        if response.status_code < 400:
            outcome = "applied"
        elif seen:
            outcome = "replayed"
        else:
            outcome = "refused" if delivery_id else "unauthenticated"
        metrics.WEBHOOK_DELIVERIES.labels(metrics.provider_label(provider), outcome).inc()
        return response

    @extend_schema(
        summary="A provider reports a result",
        description=(
            'Signed with `X-Velro-Signature: t=<unix>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>." + body)>`. '
            "A wrong or expired (older than 5 minutes) signature is a 401 and changes nothing. Every delivery "
            "is recorded whatever its outcome; a replay of one is a 409 (`replayed_delivery`) and changes nothing."
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
        record_delivery(request, provider=provider)

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
            if generation.status != Generation.Status.PROCESSING:
                raise Conflict(f"The generation is {generation.status}; the result was not applied.")
            try:
                # Copied into our storage first, as the worker does (generations/outputs.py).
                stored = store_outputs(generation, outputs)
            except ProviderError as exc:
                done = services.generation_fail(
                    generation=generation, error=str(exc), from_statuses=[Generation.Status.PROCESSING]
                )
            else:
                done = services.generation_complete(
                    generation=generation, outputs=stored, provider_request_id=data.validated_data.get("request_id", "")
                )
                if not done:
                    delete_quietly(stored_paths(stored))
        else:
            done = services.generation_fail(
                generation=generation,
                error=data.validated_data["error"] or "The provider reported an error.",
                from_statuses=[Generation.Status.PROCESSING],
            )
        if not done:
            raise Conflict(f"The generation is {generation.status}; the result was not applied.")
        generation.refresh_from_db()
        WebhookDelivery.objects.filter(signature=request.user.signature).update(
            status_code=status.HTTP_200_OK, generation_id=generation.pk
        )
        return Response({"id": str(generation.pk), "status": generation.status}, status=status.HTTP_200_OK)
