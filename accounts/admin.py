from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.html import format_html

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import Profile, User
from credits.models import CreditTransaction
from velro.admin import ReadOnlyInlineMixin


class ProfileInline(ReadOnlyInlineMixin, admin.StackedInline):
    """The profile is owned by the sync triggers; staff read it here."""

    model = Profile
    max_num = 1
    fields = (
        "full_name",
        "email",
        "avatar_url",
        "credits_balance",
        "current_plan",
        "is_active",
        "metadata",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields


class CreditTransactionInline(ReadOnlyInlineMixin, admin.TabularInline):
    """The newest ledger rows; the ledger is append-only and never edited here."""

    model = CreditTransaction
    fk_name = "user"
    ordering = ("-created_at", "-id")
    fields = ("created_at", "type", "amount", "balance_after", "description", "created_by")
    readonly_fields = fields
    verbose_name_plural = "credit ledger"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    inlines = [ProfileInline, CreditTransactionInline]

    list_display = ("email", "display_name", "credits", "is_active", "is_staff", "created_at", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
    list_select_related = ("profile",)
    search_fields = ("email",)
    ordering = ("-created_at",)
    show_full_result_count = False

    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Metadata", {"fields": ("raw_user_meta_data", "raw_app_meta_data")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("email_confirmed_at", "last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ("id", "last_login", "created_at", "updated_at")
    filter_horizontal = ("groups", "user_permissions")

    def get_inlines(self, request, obj):
        # On the add page there is no profile or ledger yet: the trigger makes them.
        return self.inlines if obj is not None else []

    @admin.display(description="name", ordering="profile__full_name")
    def display_name(self, obj):
        return obj.profile.full_name if hasattr(obj, "profile") else ""

    @admin.display(description="credits", ordering="profile__credits_balance")
    def credits(self, obj):
        if not hasattr(obj, "profile"):
            return format_html('<span style="color:#ba2121">{}</span>', "no profile")
        return obj.profile.credits_balance
