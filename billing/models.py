"""What people can buy (credit packs, plans), what they bought (orders), and what Stripe
told us (events, once each). Credits move only through credits.services, tied to an
order or invoice by the ledger's unique reference."""

import uuid

from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F
from django.db.models.functions import Now

from velro.expressions import UTCTimestamp, words

# The plans a profile's current_plan can name that billing sells (enterprise is by hand).
PLAN_SLUG_CHOICES = [("free", "Free"), ("basic", "Basic"), ("pro", "Pro")]


class CreditPack(models.Model):
    """A one-off purchase of ``credits`` for ``price`` (minor units of ``currency``).
    Anyone may read the active ones (RLS); staff edit them in the admin."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    credits = models.PositiveIntegerField()
    price = models.PositiveIntegerField(help_text="In the currency's minor unit (cents).")
    currency = models.CharField(max_length=3, default="usd", db_default="usd")
    stripe_price_id = models.CharField(max_length=100, blank=True, db_default="")
    active = models.BooleanField(default=True, db_default=True)
    sort_order = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "billing_credit_packs"
        ordering = ["sort_order", "price", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="credit_pack_credits_positive"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="credit_pack_price_positive"),
        ]
        indexes = [models.Index(fields=["sort_order"], condition=models.Q(active=True), name="credit_pack_active_idx")]

    def __str__(self):
        return f"{self.name} ({self.credits} credits)"


class Plan(models.Model):
    """A monthly subscription: ``monthly_credits`` granted by each paid invoice.
    ``slug`` is the profile's ``current_plan`` while subscribed; ``free`` costs nothing
    and has no Stripe price."""

    slug = models.CharField(max_length=20, unique=True, choices=PLAN_SLUG_CHOICES)
    name = models.CharField(max_length=100)
    monthly_price = models.PositiveIntegerField(help_text="In the currency's minor unit (cents).")
    currency = models.CharField(max_length=3, default="usd", db_default="usd")
    monthly_credits = models.PositiveIntegerField()
    stripe_price_id = models.CharField(max_length=100, blank=True, db_default="")
    active = models.BooleanField(default=True, db_default=True)
    sort_order = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "billing_plans"
        ordering = ["sort_order", "monthly_price", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(slug__in=["free", "basic", "pro"]), name="plan_slug_valid"),
        ]
        indexes = [models.Index(fields=["sort_order"], condition=models.Q(active=True), name="plan_active_idx")]

    def __str__(self):
        return self.name


class StripeCustomer(models.Model):
    """The Stripe customer of a person, created at their first checkout and reused."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="stripe_customer"
    )
    customer_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "billing_stripe_customers"

    def __str__(self):
        return self.customer_id


class Order(models.Model):
    """One checkout: a pack bought once, or a plan subscribed to.

    Created ``pending`` by POST billing/checkout; only Stripe's signed webhooks move it
    on. ``credits`` is what its payment granted (a pack's credits; a plan's are granted
    per invoice); ``credits_taken_back`` and ``shortfall`` are what refunds and disputes
    took back and what could not be taken because it was already spent.
    """

    class Kind(models.TextChoices):
        PACK = "pack", "Credit pack"
        PLAN = "plan", "Plan"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        DISPUTED = "disputed", "Disputed"
        CANCELED = "canceled", "Canceled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_index=False,  # billing_order_user_created_idx leads with user_id
        related_name="orders",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    pack = models.ForeignKey(CreditPack, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_default=State.PENDING)
    amount = models.PositiveIntegerField(help_text="In the currency's minor unit.")
    currency = models.CharField(max_length=3)
    credits = models.PositiveIntegerField()
    credits_taken_back = models.PositiveIntegerField(default=0, db_default=0)
    shortfall = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Credits a refund or dispute could not take back: already spent."
    )
    checkout_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_default="", db_index=True)
    charge_id = models.CharField(max_length=255, blank=True, db_default="")
    subscription_id = models.CharField(max_length=255, blank=True, db_default="", db_index=True)
    invoice_id = models.CharField(max_length=255, blank=True, db_default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "billing_orders"
        ordering = ["-created_at", "-id"]
        indexes = [
            # "my orders, newest first" and the RLS policy's user_id filter.
            models.Index(fields=["user", "-created_at", "-id"], name="billing_order_user_created_idx"),
            # The admin's changelist, newest first; on an expression so that the API's
            # per-person pages can never be planned on it (velro.expressions.UTCTimestamp).
            models.Index(UTCTimestamp("created_at").desc(), F("id").desc(), name="billing_order_admin_order_idx"),
            # The admin's search by a Stripe id (the others are indexed for the webhook).
            models.Index(fields=["charge_id"], name="billing_order_charge_idx"),
            models.Index(fields=["invoice_id"], name="billing_order_invoice_idx"),
            # The orders changelist's revenue of the last 30 days (selectors.revenue_by_day).
            models.Index(fields=["paid_at"], name="billing_order_paid_idx", condition=models.Q(paid_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="pack", pack__isnull=False, plan__isnull=True))
                | models.Q(kind="plan", plan__isnull=False, pack__isnull=True),
                name="billing_order_kind_matches",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.pack or self.plan} — {self.get_state_display()}"


class StripeEvent(models.Model):
    """Every Stripe event id accepted by the webhook, once. The row is written in the
    same transaction as the event's effects: an event whose handling failed leaves no
    row, and Stripe's retry is handled afresh."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        NOTHING_TO_DO = "nothing_to_do", "Nothing to do"
        IGNORED = "ignored", "Ignored (type not handled)"

    id = models.CharField(primary_key=True, max_length=255)
    type = models.CharField(max_length=100)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True, db_default="")
    livemode = models.BooleanField(default=False, db_default=False)
    received_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "billing_stripe_events"
        ordering = ["-received_at"]
        indexes = [
            # The admin's changelist, newest first (no API lists events).
            models.Index(fields=["-received_at", "-id"], name="stripe_event_received_idx"),
            # The admin's search by the words of the detail.
            GinIndex(words("detail"), name="stripe_event_detail_words_idx"),
        ]

    def __str__(self):
        return f"{self.id} {self.type}"
