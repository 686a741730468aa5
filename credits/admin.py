from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from credits.models import CreditTransaction
from velro.admin import BigTableAdminMixin, ReadOnlyAdminMixin
from velro.expressions import UTCTimestamp, words


@admin.register(CreditTransaction)
class CreditTransactionAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger, read only: rows are written by credits_apply() alone (the grant and
    adjustment action lives on the Users admin), and a trigger refuses UPDATE/DELETE."""

    list_display = (
        "user_email",
        "type",
        "amount",
        "balance_after",
        "generation_link",
        "description",
        "created_by_email",
        "created",
    )
    # Dates as a sidebar filter, not date_hierarchy: its year links are a DISTINCT over
    # every row of the ledger on each page view.
    list_filter = ("type", ("created_at", admin.DateFieldListFilter))
    # What BigTableAdminMixin.get_search_results searches, by the shape of the term.
    search_fields = ("^user__email", "=id", "=generation__id", "description")
    search_help_text = (
        "An email or its beginning (that person's ledger), the id of a ledger row or of its generation, "
        "or words of the description (each matches the words that start with it)."
    )
    id_fields = ("pk", "generation_id")
    words_vector = words("description")
    list_select_related = ("user", "created_by")
    ordering = (UTCTimestamp("created_at").desc(), "-id")  # credit_tx_admin_order_idx
    owner_ordering = ("-created_at", "-id")  # credit_tx_user_created_idx
    # Newest first only: sorting the whole table by another column (an email, a
    # prompt) would be a full sort on every page view.
    sortable_by = ("created",)
    fields = ("id", "user", "type", "amount", "balance_after", "generation", "description", "created_by", "created_at")
    readonly_fields = fields

    @admin.display(description="user", ordering="user__email")
    def user_email(self, obj):
        return obj.user.email

    @admin.display(description="created by", ordering="created_by__email")
    def created_by_email(self, obj):
        return obj.created_by.email if obj.created_by_id else ""

    @admin.display(description="generation")
    def generation_link(self, obj):
        # Only the id is needed for the link: no join to the (big) generations table.
        if obj.generation_id is None:
            return ""
        url = reverse("admin:generations_generation_change", args=[obj.generation_id])
        return format_html('<a href="{}">{}…</a>', url, str(obj.generation_id)[:8])
