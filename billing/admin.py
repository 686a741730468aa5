from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from billing.models import CreditPack, Order, Plan, StripeCustomer, StripeEvent
from billing.selectors import revenue_by_day
from billing.services import order_refund
from velro.admin import ReadOnlyAdminMixin
from velro.exceptions import ApplicationError


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
class OrderAdmin(admin.ModelAdmin):
    """Orders move only through Stripe's webhooks: every column is read-only here."""

    list_display = ["created_at", "user", "kind", "product", "state", "amount", "currency", "credits", "shortfall_cell"]
    list_filter = ["state", "kind", "currency"]
    list_select_related = ["user", "pack", "plan"]
    search_fields = [
        "user__email",
        "checkout_session_id",
        "payment_intent_id",
        "charge_id",
        "subscription_id",
        "invoice_id",
    ]
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
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["refund"]

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
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What Stripe told us, once per event id. Read-only."""

    list_display = ["received_at", "id", "type", "outcome", "detail", "livemode"]
    list_filter = ["outcome", "type", "livemode"]
    search_fields = ["id", "detail"]
    show_full_result_count = False


@admin.register(StripeCustomer)
class StripeCustomerAdmin(admin.ModelAdmin):
    list_display = ["user", "customer_id", "created_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "customer_id"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "customer_id", "created_at"]

    def has_add_permission(self, request):
        return False
