"""``POST /api/v1/billing/stripe/webhook``: Stripe reports what happened to a payment.

No JWT: the ``Stripe-Signature`` header is the authentication, verified by
stripe-python (``stripe.Webhook.construct_event``: HMAC-SHA256 with
STRIPE_WEBHOOK_SECRET over ``"<t>." + raw body``, at most STRIPE_WEBHOOK_TOLERANCE
seconds old). A missing, wrong or stale signature is a 400 (what Stripe expects) and
nothing is recorded. A verified call runs as ``service_role`` — the RLS glue maps the
Stripe principal to it, as it does for provider webhooks (generations/webhooks.py) —
and every event id is applied once (billing.services.stripe_event_apply); a
redelivery answers 200 and changes nothing, so Stripe stops retrying.
"""

import json

import stripe
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from billing.services import stripe_event_apply
from velro.api import BaseAPIView
from velro.openapi import errors

SIGNATURE_HEADER = "Stripe-Signature"


class BadSignature(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Missing, invalid or expired Stripe signature."
    default_code = "invalid_signature"


class StripePrincipal:
    """Who a verified Stripe webhook is: the service side (velro.rls.claims_for)."""

    is_authenticated = True
    is_active = True
    is_service = True
    pk = None
    name = "stripe"

    def __init__(self, event: dict):
        self.event = event


class StripeSignatureAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise BadSignature("Stripe webhooks are not configured.")
        body = request.body
        try:
            stripe.Webhook.construct_event(
                body,
                request.headers.get(SIGNATURE_HEADER),
                secret,
                tolerance=settings.STRIPE_WEBHOOK_TOLERANCE,
            )
            # The library checked the bytes; our handlers read them as plain JSON.
            event = json.loads(body)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise BadSignature() from exc
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
            raise BadSignature("Not a Stripe event.")
        return StripePrincipal(event), None

    def authenticate_header(self, request):
        # No WWW-Authenticate challenge: a refusal is a 400, not a 401.
        return None


class StripeSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "billing.webhooks.StripeSignatureAuthentication"
    name = "stripeSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": SIGNATURE_HEADER,
            "description": 't=<unix seconds>,v1=<hex HMAC-SHA256(STRIPE_WEBHOOK_SECRET, "<t>." + body)>',
        }


class IsStripe(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, StripePrincipal)


class RawParser(BaseParser):
    """The body is read raw by the authentication; nothing else parses it."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


class StripeWebhookView(BaseAPIView):
    authentication_classes = [StripeSignatureAuthentication]
    permission_classes = [IsStripe]
    parser_classes = [RawParser]

    def initial(self, request, *args, **kwargs):
        # A method this view does not serve is a 405 before the signature is looked at
        # (DRF would authenticate first and answer 400).
        if not hasattr(self, request.method.lower()):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary="Stripe reports a payment event",
        description=(
            "Signed by Stripe (`Stripe-Signature`). A missing, wrong or expired signature is a 400 and records "
            "nothing. Each event id is applied once; a redelivery answers 200 with `duplicate: true`."
        ),
        tags=["billing"],
        request=None,
        responses={
            200: inline_serializer(
                name="StripeWebhookResult",
                fields={
                    "id": serializers.CharField(),
                    "outcome": serializers.CharField(),
                    "duplicate": serializers.BooleanField(),
                },
            ),
            **errors(400),
        },
    )
    def post(self, request):
        event = request.user.event
        record = stripe_event_apply(event)
        if record is None:
            return Response({"id": event["id"], "outcome": "already_received", "duplicate": True})
        return Response({"id": record.id, "outcome": record.outcome, "duplicate": False})
