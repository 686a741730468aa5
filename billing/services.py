"""Checkout, the billing portal, and what each Stripe event does.

Only Stripe's signed webhooks grant or take back credits, and always through
credits.services with a ledger reference (``order:<id>``, ``invoice:<id>``,
``refund:<charge>:<amount refunded>``, ``dispute:<id>``) that the database keeps unique:
an event delivered twice, replayed under a new id, or racing itself grants nothing
twice. Order rows are locked (``select_for_update``) before their amounts change, so
two events about one order apply one after the other.

People never write billing rows under their own role (no grants): checkout writes its
order and customer as ``service_role`` (``as_service``); the webhook already runs as
it (velro.rls maps the signed Stripe principal to it).
"""

import contextlib
import json
import logging

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Profile
from billing import stripe_api
from billing.models import CreditPack, Order, Plan, StripeCustomer, StripeEvent
from credits.models import CreditTransaction
from credits.services import credits_purchase, credits_take_back
from velro.rls import ROLE_SERVICE, transaction_role

logger = logging.getLogger(__name__)

PAID_SESSION = ("paid", "no_payment_required")
LIVE_SUBSCRIPTION = ("active", "trialing", "past_due")
FREE_PLAN = Profile.Plan.FREE.value
# Orders whose credits were granted, so that a refund or dispute may take them back.
GRANTED = (Order.State.PAID, Order.State.PARTIALLY_REFUNDED, Order.State.REFUNDED, Order.State.DISPUTED)


@contextlib.contextmanager
def as_service():
    """Run the block as ``service_role``: billing rows have no grants for people."""
    with transaction_role(ROLE_SERVICE, json.dumps({"role": ROLE_SERVICE, "service": "billing"})):
        yield


def _stripe_call(what: str, call):
    try:
        return call()
    except stripe.StripeError as exc:
        logger.warning("billing: Stripe refused %s: %s", what, exc)
        raise stripe_api.StripeUnavailable(f"Stripe could not {what}; try again.") from exc


def _customer_id_for(user, client: stripe.StripeClient) -> str:
    """The person's Stripe customer, created once and reused. Stripe's idempotency key
    makes two racing first checkouts create one customer."""
    with as_service():
        existing = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if existing:
        return existing
    customer = _stripe_call(
        "create a customer",
        lambda: client.v1.customers.create(
            params={"email": user.email, "metadata": {"user_id": str(user.pk)}},
            options={"idempotency_key": f"customer-{user.pk}"},
        ),
    )
    with as_service():
        StripeCustomer.objects.bulk_create([StripeCustomer(user=user, customer_id=customer.id)], ignore_conflicts=True)
    return customer.id


def checkout_create(*, user, pack: CreditPack | None = None, plan: Plan | None = None) -> tuple[Order, str]:
    """Open a Stripe Checkout Session for ``pack`` (mode payment) or ``plan`` (mode
    subscription) and record a ``pending`` order. Returns ``(order, checkout url)``.

    Raises ``BillingNotConfigured`` (no secret key), ``ValidationError`` (inactive, no
    Stripe price, the free plan), ``StripeUnavailable``. Grants nothing: the webhook does.
    """
    client = stripe_api.client()
    product = pack or plan
    field = "pack" if pack else "plan"
    if product is None or (pack is not None and plan is not None):
        raise ValidationError({"non_field_errors": "Give a pack or a plan."})
    if not product.active or not product.stripe_price_id or (plan is not None and plan.monthly_price == 0):
        raise ValidationError({field: "This is not for sale."})
    with as_service():
        order = Order.objects.create(
            user=user,
            kind=Order.Kind.PACK if pack else Order.Kind.PLAN,
            pack=pack,
            plan=plan,
            amount=pack.price if pack else plan.monthly_price,
            currency=product.currency,
            credits=pack.credits if pack else plan.monthly_credits,
        )
    metadata = {"order_id": str(order.pk), "user_id": str(user.pk), field: product.slug}
    params = {
        "mode": "payment" if pack else "subscription",
        "customer": _customer_id_for(user, client),
        "client_reference_id": str(user.pk),
        "line_items": [{"price": product.stripe_price_id, "quantity": 1}],
        "metadata": metadata,
        "success_url": settings.BILLING_SUCCESS_URL,
        "cancel_url": settings.BILLING_CANCEL_URL,
    }
    # The payment's own objects carry the order too: refunds and disputes name the
    # payment intent, renewals the subscription.
    params["payment_intent_data" if pack else "subscription_data"] = {"metadata": metadata}
    session = _stripe_call(
        "open a checkout",
        lambda: client.v1.checkout.sessions.create(params=params, options={"idempotency_key": f"checkout-{order.pk}"}),
    )
    with as_service():
        Order.objects.filter(pk=order.pk).update(checkout_session_id=session.id)
    order.checkout_session_id = session.id
    return order, session.url


def portal_create(*, user) -> str:
    """A Stripe billing portal link for the person's customer. Raises
    ``BillingNotConfigured``, ``ValidationError`` (never checked out), ``StripeUnavailable``."""
    client = stripe_api.client()
    with as_service():
        customer_id = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if not customer_id:
        raise ValidationError({"non_field_errors": "Nothing bought yet: there is no billing account to manage."})
    session = _stripe_call(
        "open the billing portal",
        lambda: client.v1.billing_portal.sessions.create(
            params={"customer": customer_id, "return_url": settings.BILLING_PORTAL_RETURN_URL}
        ),
    )
    return session.url


def order_refund(*, order: Order) -> str:
    """Ask Stripe to refund a paid pack order in full (the admin's action). Changes no
    credits: Stripe's ``charge.refunded`` webhook takes them back, as for a refund made
    in Stripe's dashboard. Returns the refund id. Raises ``ValidationError`` (not a paid
    pack), ``BillingNotConfigured``, ``StripeUnavailable``."""
    if order.kind != Order.Kind.PACK or order.state != Order.State.PAID or not order.payment_intent_id:
        raise ValidationError("Only a paid credit pack can be refunded here.")
    client = stripe_api.client()
    refund = _stripe_call(
        "refund the payment",
        lambda: client.v1.refunds.create(
            params={"payment_intent": order.payment_intent_id, "metadata": {"order_id": str(order.pk)}},
            # One refund per order, however often staff click.
            options={"idempotency_key": f"refund-{order.pk}"},
        ),
    )
    return refund.id


# --- webhooks ------------------------------------------------------------------------


def stripe_event_apply(event: dict) -> StripeEvent | None:
    """Apply one verified Stripe event (the parsed JSON), once per event id.

    Returns the recorded event, or None when the id was recorded before (a redelivery:
    nothing happens). The record is written in the caller's transaction with the
    event's effects: if handling fails, neither stays and Stripe's retry starts afresh.
    A racing copy of the same event waits on the primary key and then finds it taken.
    """
    try:
        with transaction.atomic():
            record = StripeEvent.objects.create(
                id=event["id"],
                type=event.get("type", "")[:100],
                outcome=StripeEvent.Outcome.IGNORED,
                livemode=bool(event.get("livemode")),
            )
    except IntegrityError:
        return None
    handler = HANDLERS.get(record.type)
    if handler is not None:
        detail = handler((event.get("data") or {}).get("object") or {})
        record.outcome = StripeEvent.Outcome.APPLIED if detail else StripeEvent.Outcome.NOTHING_TO_DO
        record.detail = (detail or "")[:500]
        record.save(update_fields=["outcome", "detail"])
    return record


def _locked_order(*, order_id=None, **lookup) -> Order | None:
    """The order, row-locked, by a Stripe id (``lookup``) or else by the order id from
    metadata. None when neither names one of ours."""
    orders = Order.objects.select_for_update(of=("self",)).select_related("pack", "plan")
    lookup = {key: value for key, value in lookup.items() if value}
    order = orders.filter(**lookup).first() if lookup else None
    if order is None and order_id:
        try:
            order = orders.filter(pk=order_id).first()
        except ValidationError:  # not a UUID: not ours
            return None
    return order


def _metadata_order_id(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("order_id")


def _set_plan(user_id, slug: str) -> None:
    Profile.objects.filter(pk=user_id).exclude(current_plan=slug).update(current_plan=slug)


def _grant_pack(order: Order) -> str:
    entry = credits_purchase(
        user_id=order.user_id,
        amount=order.credits,
        reference=f"order:{order.pk}",
        description=f"Bought {order.pack.name} ({order.credits} credits)",
    )
    return f"granted {order.credits} credits" if entry else ""


def on_checkout_session_completed(session: dict) -> str:
    """Paid (or free) → the order is paid; a pack grants its credits once. Unpaid (a
    delayed payment method): wait for async_payment_succeeded."""
    order = _locked_order(checkout_session_id=session.get("id"), order_id=_metadata_order_id(session))
    if order is None or session.get("payment_status") not in PAID_SESSION:
        return ""
    return _order_paid(order, session)


def _order_paid(order: Order, session: dict) -> str:
    changed = []
    if order.state == Order.State.PENDING:
        order.state = Order.State.PAID
        order.paid_at = timezone.now()
        changed += ["state", "paid_at"]
    for field, key in (("payment_intent_id", "payment_intent"), ("subscription_id", "subscription")):
        value = session.get(key)
        if isinstance(value, str) and value and not getattr(order, field):
            setattr(order, field, value)
            changed.append(field)
    if changed:
        order.save(update_fields=[*changed, "updated_at"])
    if order.kind == Order.Kind.PLAN:
        # The plan's credits come with each paid invoice (invoice.paid).
        if order.state == Order.State.PAID:
            _set_plan(order.user_id, order.plan.slug)
        return f"subscribed to {order.plan.slug}" if changed else ""
    if order.state != Order.State.PAID:
        return ""  # refunded or disputed before this (late) event: nothing to grant
    return _grant_pack(order)


def on_async_payment_succeeded(session: dict) -> str:
    order = _locked_order(checkout_session_id=session.get("id"), order_id=_metadata_order_id(session))
    return _order_paid(order, session) if order is not None else ""


def _order_ended(session: dict, state: str) -> str:
    order = _locked_order(checkout_session_id=session.get("id"), order_id=_metadata_order_id(session))
    if order is None or order.state != Order.State.PENDING:
        return ""
    order.state = state
    order.save(update_fields=["state", "updated_at"])
    return f"order {state}"


def on_async_payment_failed(session: dict) -> str:
    return _order_ended(session, Order.State.FAILED)


def on_checkout_session_expired(session: dict) -> str:
    return _order_ended(session, Order.State.EXPIRED)


def _take_back(order: Order, credits: int, *, reference: str, type: str, why: str) -> str:
    """Take ``credits`` of ``order``'s back (as far as the balance goes) and record
    what was taken and what could not be (the shortfall)."""
    if credits <= 0:
        return ""
    _entry, shortfall = credits_take_back(
        user_id=order.user_id, amount=credits, reference=reference, description=why, type=type
    )
    order.credits_taken_back += credits - shortfall
    order.shortfall += shortfall
    return f"took back {credits - shortfall} credits" + (f", {shortfall} already spent" if shortfall else "")


def on_charge_refunded(charge: dict) -> str:
    """A (partial) refund takes back the same share of the pack's credits."""
    order = _locked_order(payment_intent_id=charge.get("payment_intent"), order_id=_metadata_order_id(charge))
    if order is None or order.kind != Order.Kind.PACK or order.state not in GRANTED:
        return ""
    amount, refunded = charge.get("amount") or order.amount, charge.get("amount_refunded") or 0
    due = min(order.credits, order.credits * refunded // amount) if amount else order.credits
    detail = _take_back(
        order,
        due - order.credits_taken_back - order.shortfall,
        reference=f"refund:{charge.get('id')}:{refunded}",
        type=CreditTransaction.Type.REFUND,
        why=f"Refund of {order.pack.name}",
    )
    order.state = Order.State.REFUNDED if charge.get("refunded") else Order.State.PARTIALLY_REFUNDED
    order.charge_id = order.charge_id or charge.get("id") or ""
    order.save(update_fields=["state", "charge_id", "credits_taken_back", "shortfall", "updated_at"])
    return detail or f"order {order.state}"


def on_charge_dispute_created(dispute: dict) -> str:
    """A dispute takes back what is left of the pack's credits until staff decide."""
    order = _locked_order(payment_intent_id=dispute.get("payment_intent"))
    if order is None or order.kind != Order.Kind.PACK or order.state not in GRANTED:
        return ""
    detail = _take_back(
        order,
        order.credits - order.credits_taken_back - order.shortfall,
        reference=f"dispute:{dispute.get('id')}",
        type=CreditTransaction.Type.ADJUSTMENT,
        why=f"Disputed payment for {order.pack.name}",
    )
    order.state = Order.State.DISPUTED
    order.save(update_fields=["state", "credits_taken_back", "shortfall", "updated_at"])
    return detail or "order disputed"


def _subscription_of(invoice: dict) -> tuple[str | None, dict]:
    """The subscription id and metadata of an invoice. Since API 2025-03 they live under
    ``parent.subscription_details``; older payloads had a top-level ``subscription``."""
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    subscription = details.get("subscription") or invoice.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    return subscription, details.get("metadata") or {}


def _plan_order(subscription_id: str, metadata: dict) -> Order | None:
    """The plan order behind a subscription. An event that arrives before the one that
    told us the subscription (invoice.paid before checkout.session.completed) asks
    Stripe for the subscription and finds the order in its metadata."""
    order_id = metadata.get("order_id")
    if not order_id and not Order.objects.filter(subscription_id=subscription_id).exists():
        client = stripe_api.client()
        subscription = _stripe_call("find a subscription", lambda: client.v1.subscriptions.retrieve(subscription_id))
        order_id = (subscription.to_dict().get("metadata") or {}).get("order_id")
    order = _locked_order(subscription_id=subscription_id, order_id=order_id)
    if order is None or order.kind != Order.Kind.PLAN:
        return None
    if order.subscription_id != subscription_id:
        order.subscription_id = subscription_id
        order.save(update_fields=["subscription_id", "updated_at"])
    return order


def _plan_for_prices(prices: list, fallback: Plan) -> Plan:
    """The plan a subscription now pays for, by its price ids (a change made in the
    billing portal swaps the price); the order's own plan when none is ours."""
    ids = [price for price in prices if isinstance(price, str) and price]
    plan = Plan.objects.filter(stripe_price_id__in=ids).exclude(stripe_price_id="").first() if ids else None
    return plan or fallback


def _invoice_prices(invoice: dict) -> list:
    """Price ids of an invoice's lines: ``pricing.price_details.price`` since API
    2025-03, ``price.id`` before."""
    lines = ((invoice.get("lines") or {}).get("data")) or []
    prices = []
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            continue
        details = (line.get("pricing") or {}).get("price_details") or {}
        old = line.get("price")
        prices.append(details.get("price") or (old.get("id") if isinstance(old, dict) else old))
    return prices


def _subscription_prices(subscription: dict) -> list:
    items = ((subscription.get("items") or {}).get("data")) or []
    return [
        (item.get("price") or {}).get("id") if isinstance(item.get("price"), dict) else item.get("price")
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]


def on_invoice_paid(invoice: dict) -> str:
    """Each paid invoice of a plan grants that month's credits, once per invoice."""
    subscription_id, metadata = _subscription_of(invoice)
    if not subscription_id:
        return ""
    order = _plan_order(subscription_id, metadata)
    if order is None:
        return ""
    if order.state == Order.State.PENDING:
        order.state, order.paid_at = Order.State.PAID, timezone.now()
        order.save(update_fields=["state", "paid_at", "updated_at"])
    plan = _plan_for_prices(_invoice_prices(invoice), order.plan)
    _set_plan(order.user_id, plan.slug)
    if plan.monthly_credits <= 0:
        return ""
    entry = credits_purchase(
        user_id=order.user_id,
        amount=plan.monthly_credits,
        reference=f"invoice:{invoice.get('id')}",
        description=f"{plan.name} plan: {plan.monthly_credits} monthly credits",
    )
    return f"granted {plan.monthly_credits} plan credits" if entry else ""


def on_subscription_updated(subscription: dict) -> str:
    """A live subscription sets the plan its price is for (a switch in the billing
    portal changes it); one that stopped (unpaid, canceled) returns to free. Cancelling
    at the period's end changes nothing until Stripe deletes it."""
    order = _plan_order(subscription.get("id"), subscription.get("metadata") or {})
    if order is None:
        return ""
    plan = _plan_for_prices(_subscription_prices(subscription), order.plan)
    slug = plan.slug if subscription.get("status") in LIVE_SUBSCRIPTION else FREE_PLAN
    _set_plan(order.user_id, slug)
    return f"plan {slug}"


def on_subscription_deleted(subscription: dict) -> str:
    """The subscription ended (at the period's end after a cancel): back to free."""
    order = _plan_order(subscription.get("id"), subscription.get("metadata") or {})
    if order is None:
        return ""
    _set_plan(order.user_id, FREE_PLAN)
    if order.state == Order.State.PAID:
        order.state = Order.State.CANCELED
        order.save(update_fields=["state", "updated_at"])
    return "plan free"


HANDLERS = {
    "checkout.session.completed": on_checkout_session_completed,
    "checkout.session.async_payment_succeeded": on_async_payment_succeeded,
    "checkout.session.async_payment_failed": on_async_payment_failed,
    "checkout.session.expired": on_checkout_session_expired,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_charge_dispute_created,
    "invoice.paid": on_invoice_paid,
    "customer.subscription.updated": on_subscription_updated,
    "customer.subscription.deleted": on_subscription_deleted,
}
