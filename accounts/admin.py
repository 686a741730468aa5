from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.utils.html import format_html

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import Profile, Session, User
from credits.forms import CreditChangeForm
from credits.models import CreditTransaction
from credits.services import credits_adjust, credits_grant
from velro.admin import ReadOnlyInlineMixin
from velro.exceptions import ApplicationError

# One grant form is for a handful of people (support cases, testers); a campaign for
# thousands belongs in a management command, not in a list of hidden inputs.
MAX_USERS_PER_CREDIT_CHANGE = 100


class ProfileInline(ReadOnlyInlineMixin, admin.StackedInline):
    """The profile is owned by the sync triggers; staff read it here."""

    model = Profile
    max_num = 1
    fields = (
        "full_name",
        "email",
        "avatar_url",
        "credits_balance",
        "storage",
        "current_plan",
        "is_active",
        "metadata",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="storage used")
    def storage(self, obj):
        return f"{filesizeformat(obj.storage_bytes)} ({obj.storage_bytes:,} bytes)"


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


class SessionInline(admin.TabularInline):
    """The person's signed-in devices. Staff end one by ticking "Delete" and saving: its
    refresh token and access tokens stop working at once (the database cascades)."""

    model = Session
    ordering = ("-created_at",)
    fields = ("user_agent", "ip", "method", "created_at", "last_used_at")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "sessions (delete one to sign that device out)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="last used")
    def last_used_at(self, obj):
        return obj.last_used_at


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    inlines = [ProfileInline, SessionInline, CreditTransactionInline]

    list_display = (
        "email",
        "display_name",
        "credits",
        "storage",
        "is_active",
        "is_staff",
        "created_at",
        "last_login",
    )
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
        ("Sign-in", {"fields": ("banned_until", "email_change")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ("id", "last_login", "created_at", "updated_at")
    filter_horizontal = ("groups", "user_permissions")
    actions = ["grant_credits"]

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

    @admin.display(description="storage", ordering="profile__storage_bytes")
    def storage(self, obj):
        return filesizeformat(obj.profile.storage_bytes) if hasattr(obj, "profile") else ""

    def has_credits_permission(self, request):
        # Changing balances is its own right: editing users is not enough.
        return request.user.has_perm("credits.add_credittransaction")

    @admin.action(description="Grant or adjust credits", permissions=["credits"])
    def grant_credits(self, request, queryset):
        """Ask for amount, kind and reason, then change each selected user's balance
        through the credits service, reporting each user's outcome."""
        users = list(queryset.select_related("profile").order_by("email")[: MAX_USERS_PER_CREDIT_CHANGE + 1])
        if len(users) > MAX_USERS_PER_CREDIT_CHANGE:
            self.message_user(
                request,
                f"Select at most {MAX_USERS_PER_CREDIT_CHANGE} users for one credit change.",
                messages.ERROR,
            )
            return None

        form = CreditChangeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._apply_credit_change(request, users, **form.cleaned_data)
            return None  # back to the list, where the messages are shown

        context = {
            **self.admin_site.each_context(request),
            "title": "Grant or adjust credits",
            "opts": self.opts,
            "form": form,
            "users": users,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "grant_credits",
        }
        return TemplateResponse(request, "admin/credits/grant_credits.html", context)

    def _apply_credit_change(self, request, users, *, kind, amount, reason):
        service = credits_grant if kind == CreditChangeForm.Kind.GRANT else credits_adjust
        for user in users:
            # Each call is its own savepoint: one refusal leaves the others applied.
            try:
                entry = service(user=user, amount=amount, reason=reason, created_by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{user.email}: {' '.join(exc.messages)}", messages.ERROR)
            except (ApplicationError, Http404) as exc:  # InsufficientCredits, no profile
                self.message_user(request, f"{user.email}: {exc}", messages.ERROR)
            else:
                self.log_change(request, user, f"Credits {kind} {amount:+d}: {reason}")
                self.message_user(
                    request,
                    f"{user.email}: {kind} of {amount:+d} credits, balance now {entry.balance_after}.",
                    messages.SUCCESS,
                )
