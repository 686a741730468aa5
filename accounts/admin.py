from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import Profile, Session, User
from billing.models import Order
from credits.forms import CreditChangeForm, UserCreditForm
from credits.models import CreditTransaction
from credits.services import credits_adjust, credits_grant
from generations.admin import STATUS_COLORS, first_thumbnail_url
from generations.models import Generation
from projects.models import Project
from velro.admin import RECENT, BigTableAdminMixin, ReadOnlyInlineMixin, RecentRowsInlineMixin
from velro.exceptions import ApplicationError, InsufficientCredits

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


class SessionInline(RecentRowsInlineMixin, admin.TabularInline):
    """The person's newest signed-in devices. Staff end one by ticking "Delete" and
    saving: its refresh token and access tokens stop working at once (the database
    cascades)."""

    model = Session
    ordering = ("-created_at", "-id")
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
class UserAdmin(BigTableAdminMixin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    inlines = [ProfileInline, SessionInline]
    # The identity form, then the person's credits (balance, the grant form, the newest
    # ledger rows) and activity (projects, generations, orders): short lists with links
    # to the filtered lists, never every row (see user_overview).
    change_form_template = "admin/credits/user_change_form.html"

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
    # What BigTableAdminMixin.get_search_results searches, by the shape of the term.
    search_fields = ("^email", "=id")
    search_help_text = "An email or its beginning, or a person's id."
    owner_field = ""
    ordering = ("-created_at",)  # users_created_at_idx
    sortable_by = ("email", "created_at")  # users_email_key, users_created_at_idx

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

    def search_other(self, request, queryset, term):
        # UPPER(email) LIKE UPPER('term%'): users_email_upper_prefix_idx.
        return queryset.filter(email__istartswith=term)

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

    # --- The user's page: credits and activity ------------------------------------

    def get_urls(self):
        # Before the parent's: its "<path:object_id>/" catch-all would take it otherwise.
        credits = path(
            "<path:object_id>/credits/",
            self.admin_site.admin_view(self.credits_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_credits",
        )
        return [credits, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if change and obj is not None:
            context = {**context, **self.user_overview(request, obj)}
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def user_overview(self, request, user, *, credit_form=None) -> dict:
        """The balance, the grant form and the newest rows of each related list the staff
        member may view, each with a link to the full list filtered to ``user``.

        One query per list (``LIMIT RECENT + 1``: the extra row only says "there is
        more"), on the (user_id, created_at) indexes: the page costs the same for a
        person with three rows or three million.
        """
        overview = {
            "balance": Profile.objects.filter(pk=user.pk).values_list("credits_balance", flat=True).first(),
            "recent": RECENT,
            "related": [],
        }
        if self.has_credits_permission(request):
            overview["credit_form"] = credit_form or UserCreditForm(auto_id="id_credits_%s")
            overview["credit_form_url"] = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_credits", args=[user.pk]
            )
        lists = (
            ("ledger", CreditTransaction.objects.select_related("created_by")),
            ("projects", Project.objects.all()),
            ("generations", Generation.objects.select_related("ai_model").defer("adaptation", "parameters")),
            ("orders", Order.objects.select_related("pack", "plan")),
        )
        for name, queryset in lists:
            model_admin = self.admin_site.get_model_admin(queryset.model)
            if not model_admin.has_view_permission(request):
                continue
            rows = list(queryset.filter(user_id=user.pk).order_by("-created_at", "-id")[: RECENT + 1])
            opts = queryset.model._meta
            overview["related"].append(
                {
                    "name": name,
                    "title": opts.verbose_name_plural,
                    "rows": [self._overview_row(name, row) for row in rows[:RECENT]],
                    "more": len(rows) > RECENT,
                    "all_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
                    + "?"
                    + urlencode({"user__id__exact": user.pk}),
                }
            )
        overview["ledger"] = next((r for r in overview["related"] if r["name"] == "ledger"), None)
        overview["activity"] = [r for r in overview["related"] if r["name"] != "ledger"]
        return overview

    def _overview_row(self, name, row) -> dict:
        opts = row._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
        if name == "ledger":
            cells = [
                row.created_at,
                row.get_type_display(),
                f"{row.amount:+d}",
                row.balance_after,
                row.description,
                row.created_by.email if row.created_by_id else "",
            ]
        elif name == "projects":
            cells = [
                row.created_at,
                row.name,
                row.get_visibility_display(),
                row.generation_count,
                row.archived_at or "",
            ]
        elif name == "generations":
            cells = [
                row.created_at,
                format_html(
                    '<strong style="color:{}">{}</strong>',
                    STATUS_COLORS.get(row.status, "#666"),
                    row.get_status_display(),
                ),
                row.ai_model.display_name,
                row.credits_charged,
                row.prompt if len(row.prompt) <= 60 else f"{row.prompt[:60]}…",
            ]
        else:  # orders
            cells = [
                row.created_at,
                str(row.pack or row.plan),
                row.get_state_display(),
                f"{row.amount / 100:,.2f} {row.currency.upper()}",
                row.credits,
            ]
        thumbnail = first_thumbnail_url(row) if name == "generations" else None
        return {"url": url, "cells": cells, "thumbnail": thumbnail}

    def credits_view(self, request, object_id):
        """GET: the grant form on a page of its own; POST (from here or the user's page):
        grant (amount > 0) or adjust (amount < 0) through the credits service, then back
        to the user's page with the new balance. Refusals are errors on the form's fields,
        with nothing written."""
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No user with this id.")
        if not (self.has_credits_permission(request) and self.has_view_or_change_permission(request, user)):
            raise PermissionDenied
        form = UserCreditForm(request.POST if request.method == "POST" else None, auto_id="id_credits_%s")
        if form.is_bound and form.is_valid():
            entry = self._change_credits(request, user, form)
            if entry is not None:
                return HttpResponseRedirect(
                    reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[user.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Grant or adjust credits: {user.email}",
            "opts": self.opts,
            "original": user,
            "has_view_permission": True,
            **self.user_overview(request, user, credit_form=form),
        }
        return TemplateResponse(request, "admin/credits/user_credits.html", context)

    def _change_credits(self, request, user, form):
        amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
        kind, service = ("grant", credits_grant) if amount > 0 else ("adjustment", credits_adjust)
        try:
            entry = service(user=user, amount=amount, reason=reason, created_by=request.user)
        except ValidationError as exc:  # keyed by "amount" / "reason", as the form is
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except InsufficientCredits as exc:
            form.add_error("amount", exc.message)
        except (ApplicationError, Http404) as exc:  # no profile
            form.add_error(None, str(exc))
        else:
            self.log_change(request, user, f"Credits {kind} {amount:+d}: {reason}")
            self.message_user(
                request,
                f"{kind.capitalize()} of {amount:+d} credits for {user.email}: balance now {entry.balance_after}.",
                messages.SUCCESS,
            )
            return entry
        return None
