"""The one place that talks to Stripe: a configured ``stripe.StripeClient`` and the
error the API maps Stripe's failures to."""

import stripe
from django.conf import settings
from rest_framework import status

from velro.exceptions import ApplicationError


class BillingNotConfigured(ApplicationError):
    """No STRIPE_SECRET_KEY: nothing can be bought on this deployment."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "billing_not_configured"


class StripeUnavailable(ApplicationError):
    """Stripe refused or did not answer; nothing was kept."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "stripe_error"


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    """A client for STRIPE_SECRET_KEY at STRIPE_API_BASE. Raises ``BillingNotConfigured``."""
    if not is_configured():
        raise BillingNotConfigured("Billing is not configured on this server.")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )
