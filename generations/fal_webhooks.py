"""``POST /api/v1/webhooks/fal``: fal reports a result, signed as fal signs it (issue 19).

fal's documentation ("Verifying Your Webhook"; ../shared/reference/FAL.md) and what is
checked here, in order:

1. the headers ``X-Fal-Webhook-Request-Id``, ``-User-Id``, ``-Timestamp`` (Unix seconds)
   and ``-Signature`` (hex) are all present, else 401;
2. the timestamp is within ``WEBHOOK_TOLERANCE`` (300 s) of now, else 401 (a captured
   delivery cannot be replayed later);
3. the signed message is ``request_id \\n user_id \\n timestamp \\n hex(sha256(raw body))``;
4. the ED25519 signature verifies with one of the public keys fal publishes as a JWKS at
   ``FAL_JWKS_URL`` (``x``: base64url, padded or not). fal names no key id, so every
   kept key is tried; when none verifies, the set is fetched again (at most every
   ``FAL_JWKS_REFRESH_SECONDS``: a rotated key is picked up, a flood of forgeries does
   not become a flood of fetches) and tried once more. The keys are kept at most
   ``FAL_JWKS_CACHE_SECONDS`` (fal: never longer than 24 h), fetched over HTTPS (plain
   http only on loopback, for the tests' fake) with ``FAL_JWKS_TIMEOUT``. Keys that
   cannot be fetched: 503, so fal delivers again later;
5. with ``FAL_WEBHOOK_USER_ID`` set, the signed user id is our fal account's (fal's docs
   leave this check to us).

The verifying is cryptography's Ed25519 (no hand-written crypto). A verified delivery
then goes the way of every provider webhook (generations/webhooks.py): recorded once in
``webhook_deliveries`` by its signature whatever its outcome (a replay is a 409 that
changes nothing), run as ``service_role``; the body's ``request_id`` must be the signed
one. The result is kept on the processing generation with that request id, and a worker
copies the outputs in and completes it (or fails and refunds it) — the first result
counts; a request id that is not ours (404) or a generation no longer processing (409)
changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import threading
import time
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.response import Response

from generations import services
from generations.models import Generation, WebhookDelivery
from generations.webhooks import WEBHOOK_STATUSES, IsService, ProviderWebhookView, ServicePrincipal, record_delivery
from velro.exceptions import Conflict
from velro.openapi import errors

logger = logging.getLogger(__name__)

HEADERS = ("Request-Id", "User-Id", "Timestamp", "Signature")


class KeysUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "fal's webhook keys could not be fetched; deliver again later."
    default_code = "keys_unavailable"


class FalKeys:
    """fal's public webhook keys, fetched from FAL_JWKS_URL and kept per process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys: list[Ed25519PublicKey] = []
        self.url = ""
        self.fetched_at = -1e18

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if one of fal's keys verifies ``signature`` of ``message``."""
        keys, fresh = self.current()
        if _verifies(keys, message, signature):
            return True
        if fresh:
            return False  # fetched for this very call: nothing newer to try
        keys = self.refetch()
        return keys is not None and _verifies(keys, message, signature)

    def current(self) -> tuple[list[Ed25519PublicKey], bool]:
        """The kept keys (fetched first if none, stale, or for another URL) and
        whether they were fetched just now."""
        with self.lock:
            stale = time.monotonic() - self.fetched_at > settings.FAL_JWKS_CACHE_SECONDS
            if self.keys and not stale and self.url == settings.FAL_JWKS_URL:
                return self.keys, False
            self._fetch()
            return self.keys, True

    def refetch(self) -> list[Ed25519PublicKey] | None:
        """Fetch again if the last fetch is older than FAL_JWKS_REFRESH_SECONDS."""
        with self.lock:
            if time.monotonic() - self.fetched_at < settings.FAL_JWKS_REFRESH_SECONDS:
                return None
            self._fetch()
            return self.keys

    def clear(self) -> None:
        with self.lock:
            self.keys, self.url, self.fetched_at = [], "", -1e18

    def _fetch(self) -> None:
        url = settings.FAL_JWKS_URL
        if not _fetchable(url):
            raise KeysUnavailable("FAL_JWKS_URL must be an https:// URL (http only on loopback).")
        try:
            response = httpx.get(url, timeout=settings.FAL_JWKS_TIMEOUT, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("fal JWKS fetch from %s failed: %r", url, exc)
            if not self.keys:
                raise KeysUnavailable() from exc
            return  # keep what we had; fetched_at unchanged, so tried again next time
        keys = [key for key in map(_public_key, _jwks_entries(document)) if key is not None]
        if not keys:
            logger.warning("fal JWKS at %s holds no Ed25519 key", url)
            raise KeysUnavailable("fal's JWKS holds no Ed25519 key.")
        self.keys, self.url, self.fetched_at = keys, url, time.monotonic()
        logger.info("fal JWKS fetched: %d key(s)", len(keys))


KEYS = FalKeys()


def _fetchable(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _jwks_entries(document) -> list:
    keys = document.get("keys") if isinstance(document, dict) else None
    return keys if isinstance(keys, list) else []


def _public_key(jwk) -> Ed25519PublicKey | None:
    """An Ed25519 key from a JWK (``x`` base64url, with or without padding), or None."""
    if not isinstance(jwk, dict) or jwk.get("kty", "OKP") != "OKP" or jwk.get("crv", "Ed25519") != "Ed25519":
        return None
    x = jwk.get("x")
    if not isinstance(x, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(x.rstrip("=") + "=" * (-len(x.rstrip("=")) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        return None


def _verifies(keys, message: bytes, signature: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


class FalSignatureAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        values = {name: request.headers.get(f"X-Fal-Webhook-{name}", "") for name in HEADERS}
        missing = [f"X-Fal-Webhook-{name}" for name, value in values.items() if not value]
        if missing:
            raise exceptions.AuthenticationFailed(f"Missing header(s): {', '.join(missing)}.")
        signature_hex = values["Signature"].strip().lower()
        try:
            signature = bytes.fromhex(signature_hex)
            timestamp = int(values["Timestamp"])
        except ValueError as exc:
            raise exceptions.AuthenticationFailed("Malformed X-Fal-Webhook-Signature or -Timestamp.") from exc
        if len(signature) != 64 or len(values["Request-Id"]) > 200 or len(values["User-Id"]) > 200:
            raise exceptions.AuthenticationFailed("Malformed X-Fal-Webhook-* headers.")
        # The delivery's id (a fresh signature per delivery, retries included), for the
        # view's dispatch to record whatever happens next.
        request._request.velro_delivery_id = signature_hex
        if abs(time.time() - timestamp) > settings.WEBHOOK_TOLERANCE:
            raise exceptions.AuthenticationFailed("The signature has expired (X-Fal-Webhook-Timestamp).")
        message = signed_message(values["Request-Id"], values["User-Id"], values["Timestamp"], request.body)
        if not KEYS.verify(message, signature):
            raise exceptions.AuthenticationFailed("Invalid signature.")
        expected_user = settings.FAL_WEBHOOK_USER_ID
        if expected_user and values["User-Id"] != expected_user:
            raise exceptions.AuthenticationFailed("Signed for another fal account (X-Fal-Webhook-User-Id).")
        principal = ServicePrincipal("fal", signature_hex)
        principal.request_id = values["Request-Id"]
        return principal, None

    def authenticate_header(self, request):
        return "X-Fal-Webhook-Signature"


class FalSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "generations.fal_webhooks.FalSignatureAuthentication"
    name = "falWebhookSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Fal-Webhook-Signature",
            "description": (
                "hex ED25519 signature of request_id\\nuser_id\\ntimestamp\\nsha256hex(body) by a key of fal's "
                "JWKS; with X-Fal-Webhook-Request-Id, -User-Id and -Timestamp"
            ),
        }


class FalWebhookInputSerializer(serializers.Serializer):
    """fal's webhook body (FAL.md): ``payload`` is the model's output, or null with
    ``payload_error``; ``error`` says why a request failed."""

    request_id = serializers.CharField(max_length=200)
    gateway_request_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=WEBHOOK_STATUSES)
    payload = serializers.JSONField(required=False, allow_null=True, default=None)
    error = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
    payload_error = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")


class FalWebhookView(ProviderWebhookView):
    authentication_classes = [FalSignatureAuthentication]
    permission_classes = [IsService]
    provider_name = "fal"

    @extend_schema(
        summary="fal reports a result (fal's own signed webhook)",
        description=(
            "Set by the worker as each request's `fal_webhook` "
            "(`<PUBLIC_BASE_URL>/api/v1/webhooks/fal`). Verified as fal documents it: an ED25519 signature "
            "(`X-Fal-Webhook-Signature`, hex) of `request_id\\nuser_id\\ntimestamp\\nsha256hex(body)` by one of "
            "the keys of fal's JWKS, timestamp within 5 minutes; anything else is a 401 and changes nothing. "
            "Every delivery is recorded whatever its outcome; a replay is a 409 (`replayed_delivery`). The first "
            "result for a processing generation is kept and a worker copies its outputs in; a request id that "
            "is not ours (404) or a generation no longer processing (409) changes nothing."
        ),
        tags=["webhooks"],
        request=FalWebhookInputSerializer,
        parameters=[
            OpenApiParameter(f"X-Fal-Webhook-{name}", str, OpenApiParameter.HEADER, required=True) for name in HEADERS
        ],
        examples=[
            OpenApiExample(
                "completed",
                request_only=True,
                value={
                    "request_id": "024ca5b1-45d3-4afd-883e-ad3abe2a1c4d",
                    "gateway_request_id": "024ca5b1-45d3-4afd-883e-ad3abe2a1c4d",
                    "status": "OK",
                    "payload": {"images": [{"url": "https://v3.fal.media/files/a.png", "width": 1024}]},
                },
            )
        ],
        responses={
            202: inline_serializer(
                name="FalWebhookResult",
                fields={"id": serializers.UUIDField(), "status": serializers.CharField()},
            ),
            **errors(400, 401, 404, 409, 503),
        },
    )
    def post(self, request, provider="fal"):
        record_delivery(request, provider="fal")
        data = FalWebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        request_id = request.user.request_id
        if body["request_id"] != request_id:
            raise exceptions.ValidationError({"request_id": ["Not the request id the signature covers."]})
        generation = Generation.objects.filter(provider_request_id=request_id).exclude(provider="").first()
        if generation is None:
            raise exceptions.NotFound("No generation of ours has this request id.")
        result = {
            "status": body["status"],
            "payload": body["payload"],
            "error": (body.get("error") or body.get("payload_error") or "")[:2000],
            "via": "webhook",
            "received_at": timezone.now().isoformat(),
        }
        if not services.generation_result_received(request_id=request_id, result=result):
            generation.refresh_from_db()
            state = "already has a result" if generation.provider_result is not None else f"is {generation.status}"
            raise Conflict(f"The generation {state}; nothing changed.")
        WebhookDelivery.objects.filter(signature=request.user.signature).update(
            status_code=status.HTTP_202_ACCEPTED, generation_id=generation.pk
        )
        return Response({"id": str(generation.pk), "status": "processing"}, status=status.HTTP_202_ACCEPTED)
