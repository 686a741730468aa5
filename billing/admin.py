import operator
from functools import reduce

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from billing.models import CreditPack, Order, Plan, StripeCustomer, StripeEvent
from billing.selectors import revenue_by_day
from billing.services import HANDLERS, order_refund
from velro.admin import BigTableAdminMixin, ReadOnlyAdminMixin
from velro.exceptions import ApplicationError
from velro.expressions import UTCTimestamp, words

# The Stripe ids staff paste into the orders' search box, each an exact match on an index.
ORDER_STRIPE_IDS = ("checkout_session_id", "payment_intent_id", "charge_id", "subscription_id", "invoice_id")


class CurrencyFilter(admin.SimpleListFilter):
    """The currencies of the catalog (packs and plans: a few rows), not a DISTINCT over
    every order on each page view."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        currencies = set(CreditPack.objects.values_list("currency", flat=True))
        currencies |= set(Plan.objects.values_list("currency", flat=True))
        return [(currency, currency.upper()) for currency in sorted(currencies)]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


class EventTypeFilter(admin.SimpleListFilter):
    """The event types the webhook handles, then "other": not a DISTINCT over every
    event on each page view."""

    title = "type"
    parameter_name = "type"
    OTHER = "other"

    def lookups(self, request, model_admin):
        return [*((name, name) for name in sorted(HANDLERS)), (self.OTHER, "Other (not handled)")]

    def queryset(self, request, queryset):
        if self.value() == self.OTHER:
            return queryset.exclude(type__in=list(HANDLERS))
        return queryset.filter(type=self.value()) if self.value() else queryset


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "credits", "price", "currency", "stripe_price_id", "active", "sort_order"]
    list_filter = ["active"]
    list_editable = ["active", "sort_order"]
    search_fields = ["slug", "name", "stripe_price_id"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "monthly_price", "currency", "monthly_credits", "stripe_price_id", "active"]
    list_filter = ["active"]
    search_fields = ["slug", "name", "stripe_price_id"]


@admin.register(Order)
class OrderAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """Orders move only through Stripe's webhooks: every column is read-only here."""

    list_display = ["created", "user", "kind", "product", "state", "amount", "currency", "credits", "shortfall_cell"]
    list_filter = ["state", "kind", CurrencyFilter, ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["user", "pack", "plan"]
    # What BigTableAdminMixin.get_search_results searches, by the shape of the term.
    search_fields = ["^user__email", "=id", *(f"={name}" for name in ORDER_STRIPE_IDS)]
    search_help_text = (
        "An email or its beginning (that person's orders), an order's id, or a Stripe id "
        "(cs_…, pi_…, ch_…, sub_…, in_…)."
    )
    ordering = [UTCTimestamp("created_at").desc(), "-id"]  # billing_order_admin_order_idx
    owner_ordering = ["-created_at", "-id"]  # billing_order_user_created_idx
    sortable_by = ["created"]
    raw_id_fields = ["user"]
    readonly_fields = [
        "id",
        "user",
        "kind",
        "pack",
        "plan",
        "state",
        "amount",
        "currency",
        "credits",
        "credits_taken_back",
        "shortfall",
        "checkout_session_id",
        "payment_intent_id",
        "charge_id",
        "subscription_id",
        "invoice_id",
        "created_at",
        "updated_at",
        "paid_at",
        "ledger",
    ]
    actions = ["refund"]

    def search_other(self, request, queryset, term):
        """A Stripe id, exactly, in any of the columns that hold one (each indexed)."""
        return queryset.filter(reduce(operator.or_, (Q(**{name: term}) for name in ORDER_STRIPE_IDS)))

    def changelist_view(self, request, extra_context=None):
        # Minor units shown as major ones (two decimals: the catalog's currencies).
        revenue = [{**row, "major": f"{row['amount'] / 100:,.2f}"} for row in revenue_by_day(days=30)]
        return super().changelist_view(request, {**(extra_context or {}), "revenue": revenue})

    @admin.action(description="Refund in Stripe (the webhook then takes the credits back)")
    def refund(self, request, queryset):
        for order in queryset.select_related("pack"):
            try:
                refund_id = order_refund(order=order)
            except (ValidationError, ApplicationError) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else exc.message
                self.message_user(request, f"{order.pk}: {message}", messages.ERROR)
            else:
                self.message_user(request, f"{order.pk}: refund {refund_id} requested.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="product")
    def product(self, order):
        return order.pack or order.plan

    @admin.display(description="shortfall", ordering="shortfall")
    def shortfall_cell(self, order):
        # Credits a refund or dispute could not take back: staff may freeze the account.
        return format_html("<strong>{}</strong>", order.shortfall) if order.shortfall else "—"

    @admin.display(description="ledger")
    def ledger(self, order):
        url = reverse("admin:credits_credittransaction_changelist") + f"?user__id__exact={order.user_id}"
        return format_html('<a href="{}">The person\'s ledger rows</a>', url)


@admin.register(StripeEvent)
class StripeEventAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """What Stripe told us, once per event id. Read-only."""

    list_display = ["received_at", "id", "type", "outcome", "detail", "livemode"]
    list_filter = ["outcome", EventTypeFilter, "livemode"]
    search_fields = ["=id", "detail"]
    search_help_text = "An event id (evt_…), or words of the detail (each matches the words that start with it)."
    owner_field = ""
    words_vector = words("detail")
    sortable_by = ["received_at"]  # stripe_event_received_idx

    def search_other(self, request, queryset, term):
        if term.startswith("evt_"):
            return queryset.filter(pk=term)
        return super().search_other(request, queryset, term)


@admin.register(StripeCustomer)
class StripeCustomerAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ["user", "customer_id", "created_at"]
    list_select_related = ["user"]
    search_fields = ["^user__email", "^customer_id"]
    search_help_text = "An email or its beginning, or a Stripe customer id (cus_…) or its beginning."
    id_fields = ["user_id"]
    sortable_by = []
    raw_id_fields = ["user"]
    readonly_fields = ["user", "customer_id", "created_at"]

    def has_add_permission(self, request):
        return False

    def search_other(self, request, queryset, term):
        # Customer ids are case-sensitive: startswith (LIKE 'cus_x%') is served by the
        # unique index's varchar_pattern_ops twin.
        if term.startswith("cus_"):
            return queryset.filter(customer_id__startswith=term)
        return super().search_other(request, queryset, term)
