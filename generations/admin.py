from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Profile
from credits.models import CreditTransaction
from generations.forms import AIModelAdminForm
from generations.models import AIModel, Generation
from generations.serializers import output_media_name
from generations.services import generation_cancel_quietly, generation_fail, generation_refund, generation_retry
from velro.admin import BigTableAdminMixin, ReadOnlyInlineMixin, RecentRowsInlineMixin
from velro.exceptions import ApplicationError, Conflict
from velro.expressions import UTCTimestamp, words
from velro.media_links import signed_media_url

Status = Generation.Status
FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

STATUS_COLORS = {
    Status.PENDING: "#666",
    Status.PROCESSING: "#205493",
    Status.COMPLETED: "#2e7d32",
    Status.FAILED: "#ba2121",
    Status.CANCELLED: "#8a6d3b",
}


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    """The model catalog, edited by staff. Deleting a model that has generations is
    refused (PROTECT); deactivate it instead."""

    form = AIModelAdminForm
    list_display = ("id", "display_name", "kind", "provider", "credits_cost", "is_active", "sort_order")
    list_editable = ("is_active", "sort_order")
    list_filter = ("kind", "provider", "is_active")
    search_fields = ("id", "display_name")
    fieldsets = (
        (None, {"fields": ("id", "display_name", "description", "kind", "provider", "is_active", "sort_order")}),
        ("Pricing and limits", {"fields": ("credits_cost", "max_prompt_length")}),
        ("Capabilities", {"fields": ("supports_lora", "supports_negative_prompt", "supports_reference_image")}),
        ("Prompting", {"fields": ("parameter_schema", "prompt_guide")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # The id is the provider's endpoint and the key generations point at: it is
        # chosen once, when the model is added.
        if obj is not None:
            return ("id", "created_at", "updated_at")
        return ("created_at", "updated_at")


class GenerationLedgerInline(RecentRowsInlineMixin, ReadOnlyInlineMixin, admin.TabularInline):
    """What this generation cost and whether it was refunded: the newest rows, then a
    link to all of them in the ledger."""

    model = CreditTransaction
    fk_name = "generation"
    ordering = ("-created_at", "-id")
    fields = ("created_at", "type", "amount", "balance_after", "description", "created_by")
    readonly_fields = fields
    verbose_name_plural = "credit ledger"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


class RefundForm(forms.Form):
    """The reason a staff member refunds a generation; stored on the ledger row."""

    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Stored on the refund's ledger row and shown to the person in their history.",
    )


@admin.register(Generation)
class GenerationAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """Generations, read only: the worker, webhooks and the services own every column.
    Staff act on them only through the actions, which call the services."""

    list_display = (
        "short_id",
        "thumbnail",
        "user_email",
        "ai_model",
        "status_badge",
        "credits_charged",
        "prompt_excerpt",
        "project",
        "created",
    )
    # The AI model filter lists the catalog (a few dozen rows); never one by user (a
    # person's generations are the link on their page: ?user__id__exact=).
    list_filter = ("status", "ai_model", ("created_at", admin.DateFieldListFilter))
    # What BigTableAdminMixin.get_search_results searches, by the shape of the term.
    search_fields = ("^user__email", "=id", "prompt")
    search_help_text = (
        "An email or its beginning (that person's generations), a generation's id, or words of the "
        "prompt (each matches the words that start with it)."
    )
    words_vector = words("prompt")
    list_select_related = ("user", "ai_model", "project")
    raw_id_fields = ("user", "project", "parent", "style_stack", "preset")
    ordering = (UTCTimestamp("created_at").desc(), "-id")  # generations_admin_order_idx
    owner_ordering = ("-created_at", "-id")  # generations_user_created_idx
    # Newest first only: sorting the whole table by another column (an email, a
    # prompt) would be a full sort on every page view.
    sortable_by = ("created",)
    inlines = [GenerationLedgerInline]
    actions = ["mark_failed_and_refund", "retry"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "user",
                    "project",
                    "parent",
                    "ai_model",
                    "status",
                    "credits_charged",
                    "attempts",
                    "is_favorite",
                )
            },
        ),
        ("Request", {"fields": ("prompt", "negative_prompt", "parameters", "reference_preview", "idempotency_key")}),
        ("Style", {"fields": ("style_stack", "preset", "adapted_prompt", "adaptation")}),
        ("Result", {"fields": ("outputs_preview", "outputs", "error_message")}),
        (
            "Provider",
            {
                "fields": (
                    "provider",
                    "provider_request_id",
                    "progress",
                    "submitted_at",
                    "next_poll_at",
                    "provider_inference_seconds",
                    "provider_cost",
                )
            },
        ),
        ("Dates", {"fields": ("created_at", "started_at", "completed_at", "updated_at")}),
    )
    readonly_fields = ("reference_preview", "outputs_preview")
    # The read-only detail with a "Refund" form of its own below it.
    change_form_template = "admin/credits/generation_change_form.html"

    def has_add_permission(self, request):
        return False  # only generation_create makes generations (and charges for them)

    def has_change_permission(self, request, obj=None):
        # No edit form at all: saving the whole row would overwrite status, outputs and
        # the charge with what this page loaded, racing the worker.
        return False

    def has_delete_permission(self, request, obj=None):
        # A finished generation may go, with its files (a task deletes them after the
        # commit: services.generation_deleted); its ledger entries stay, pointing nowhere.
        # One pending or processing is cancelled or failed first (refunded).
        if obj is not None and obj.status not in FINISHED:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        in_flight = queryset.exclude(status__in=FINISHED)
        if skipped := in_flight.count():
            self.message_user(
                request,
                f"Kept {skipped} pending or processing generation(s): cancel or fail them first.",
                messages.WARNING,
            )
        super().delete_queryset(request, queryset.filter(status__in=FINISHED))

    def has_operate_permission(self, request):
        return request.user.has_perm("generations.change_generation")

    def get_urls(self):
        # Before the parent's: its "<path:object_id>/" catch-all would take it otherwise.
        refund = path(
            "<path:object_id>/refund/",
            self.admin_site.admin_view(self.refund_view),
            name="generations_generation_refund",
        )
        return [refund, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_operate_permission(request):
            context = {**context, "refund": self._refund_context(obj)}
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _refund_context(self, generation, form=None) -> dict:
        """What the refund form shows: whether a refund is possible, the earlier refund
        if there is one, and the owner's balance."""
        refunded = (
            CreditTransaction.objects.filter(generation_id=generation.pk, type=CreditTransaction.Type.REFUND)
            .select_related("created_by")
            .first()
        )
        if refunded is not None:
            state = "refunded"
        elif generation.status in (Status.PENDING, Status.PROCESSING):
            state = "in_flight"
        elif generation.credits_charged <= 0:
            state = "nothing_charged"
        else:
            state = "refundable"
        return {
            "state": state,
            "entry": refunded,
            "form": form or RefundForm(auto_id="id_refund_%s"),
            "url": reverse("admin:generations_generation_refund", args=[generation.pk]),
            "balance": Profile.objects.filter(pk=generation.user_id).values_list("credits_balance", flat=True).first(),
        }

    def refund_view(self, request, object_id):
        """GET: the refund form; POST: refund the generation's charge once through
        generations.services.generation_refund (credits_refund), then back to the
        generation with the owner's new balance. A second refund writes nothing."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        generation = self.get_object(request, unquote(object_id))
        if generation is None:
            raise Http404("No generation with this id.")
        form = RefundForm(request.POST if request.method == "POST" else None, auto_id="id_refund_%s")
        change_url = reverse("admin:generations_generation_change", args=[generation.pk])
        if form.is_bound and form.is_valid():
            try:
                entry = generation_refund(
                    generation_id=generation.pk, reason=form.cleaned_data["reason"], created_by=request.user
                )
            except Conflict as exc:
                level = messages.WARNING if exc.code == "already_refunded" else messages.ERROR
                self.message_user(request, f"{_short(generation)}: {exc.message}", level)
                return HttpResponseRedirect(change_url)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.log_change(request, generation, f"Refunded {entry.amount} credits: {entry.description}")
                self.message_user(
                    request,
                    f"{_short(generation)}: refunded {entry.amount} credits to {generation.user.email}, "
                    f"balance now {entry.balance_after}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund generation {_short(generation)}",
            "opts": self.opts,
            "original": generation,
            "refund": self._refund_context(generation, form=form),
        }
        return TemplateResponse(request, "admin/credits/generation_refund.html", context)

    @admin.display(description="id", ordering="id")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="user", ordering="user__email")
    def user_email(self, obj):
        return obj.user.email

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLORS.get(obj.status, "#666"), obj.get_status_display()
        )

    @admin.display(description="prompt")
    def prompt_excerpt(self, obj):
        return obj.prompt if len(obj.prompt) <= 80 else f"{obj.prompt[:80]}…"

    @admin.display(description="")
    def thumbnail(self, obj):
        first = first_thumbnail_url(obj)
        if first is None:
            return ""
        return format_html('<img src="{}" alt="" loading="lazy" style="max-height:40px;max-width:60px">', first)

    @admin.display(description="outputs preview")
    def outputs_preview(self, obj):
        previews = []
        for index, output in enumerate(obj.outputs or [], start=1):
            url = _output_url(output) if isinstance(output, dict) else None
            if url is None:
                previews.append(format_html("output {}: no usable URL", index))
            elif thumbnail := _thumbnail_url(output):
                previews.append(
                    format_html(
                        '<a href="{}"><img src="{}" alt="output {}" loading="lazy" style="{}"></a>',
                        url,
                        thumbnail,
                        index,
                        "max-height:240px;max-width:240px;margin:0 8px 8px 0",
                    )
                )
            else:
                previews.append(
                    format_html(
                        '<a href="{}">output {}</a> ({})', url, index, output.get("mime_type") or "unknown type"
                    )
                )
        if not previews:
            return "—"
        return format_html_join(
            "\n", '<div style="display:inline-block;vertical-align:top">{}</div>', ((preview,) for preview in previews)
        )

    @admin.display(description="reference image")
    def reference_preview(self, obj):
        if not obj.reference_image:
            return "—"
        url = signed_media_url(obj.reference_image.name)
        return format_html(
            '<a href="{}"><img src="{}" alt="reference" loading="lazy" style="max-height:160px"></a>', url, url
        )

    @admin.action(description="Mark failed and refund", permissions=["operate"])
    def mark_failed_and_refund(self, request, queryset):
        changed = skipped = 0
        for generation in queryset:
            error = "Marked failed by staff"
            if generation.status == Status.PROCESSING and generation.provider and generation.provider_request_id:
                # Held by the provider: cancel it there first, so it stops running (and
                # billing) at the provider; whatever it answers, it is failed here.
                error += f"; {generation_cancel_quietly(generation, why='marked failed by staff')}"
            # generation_fail moves it only if it is still pending/processing at that
            # moment (a conditional update), so a worker finishing it first wins and
            # nothing is refunded twice.
            if generation.status in (Status.PENDING, Status.PROCESSING) and generation_fail(
                generation=generation, error=error, created_by=request.user
            ):
                changed += 1
                self.log_change(request, generation, "Marked failed and refunded")
            else:
                skipped += 1
        if changed:
            self.message_user(request, f"Marked {changed} generation(s) failed and refunded them.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} generation(s) that were no longer pending or processing.",
                messages.WARNING,
            )

    @admin.action(description="Retry (charges the owner again)", permissions=["operate"])
    def retry(self, request, queryset):
        created, skipped = [], 0
        for generation in queryset.select_related("user", "ai_model", "project"):
            if generation.status not in (Status.FAILED, Status.CANCELLED):
                skipped += 1
                continue
            # A retry that is still running or done is not retried again by a second
            # click: that would charge the owner twice for one request.
            newer = generation.children.exclude(status__in=[Status.FAILED, Status.CANCELLED]).first()
            if newer is not None:
                self.message_user(
                    request,
                    f"{_short(generation)}: already retried as {_short(newer)} ({newer.get_status_display()}).",
                    messages.WARNING,
                )
                continue
            try:
                new = generation_retry(generation=generation)
            except ValidationError as exc:
                self.message_user(request, f"{_short(generation)}: {' '.join(exc.messages)}", messages.ERROR)
            except (ApplicationError, Http404) as exc:  # InsufficientCredits, …
                self.message_user(request, f"{_short(generation)}: {exc}", messages.ERROR)
            else:
                created.append(new)
                self.log_change(request, generation, f"Retried as {new.pk}")
        if created:
            links = format_html_join(
                ", ",
                '<a href="{}">{}</a>',
                ((reverse("admin:generations_generation_change", args=[g.pk]), _short(g)) for g in created),
            )
            self.message_user(
                request, format_html("Retried {} generation(s): new {}.", len(created), links), messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request, f"Skipped {skipped} generation(s) that were not failed or cancelled.", messages.WARNING
            )


def _short(generation) -> str:
    return str(generation.pk)[:8]


def first_thumbnail_url(generation) -> str | None:
    """A signed link to the first output's picture (for lists), or None."""
    return next((url for output in generation.outputs or [] if (url := _thumbnail_url(output))), None)


def _is_image(output) -> bool:
    return isinstance(output, dict) and str(output.get("mime_type") or "").startswith("image/")


def _output_url(output: dict):
    """A signed link to a stored output (staff see what the owner sees), or the
    provider's URL when it is a safe one."""
    name = output_media_name(output)
    return signed_media_url(name) if name else _safe_url(output.get("url"))


def _thumbnail_url(output) -> str | None:
    """A signed link to the output's thumbnail (a poster frame for video), or to the
    output itself for an older image row without one; None when there is no picture."""
    if not isinstance(output, dict):
        return None
    if output.get("thumbnail_path"):
        return signed_media_url(output["thumbnail_path"])
    return _output_url(output) if _is_image(output) else None


def _safe_url(url):
    # Outputs come from providers: only http(s) and our own media paths become links,
    # never "javascript:" or "data:".
    if isinstance(url, str) and (url.startswith(("https://", "http://")) or url.startswith("/")):
        return url
    return None
