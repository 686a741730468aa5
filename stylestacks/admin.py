"""The admin's preset library and style stack moderation screens.

Presets are curated here: edited with the style document as JSON (validated like the
API's), previewed with ``compose`` for their recommended models, exported and imported
as JSON files (``presets_io``, shared with the ``export_presets`` / ``import_presets``
commands). Style stacks belong to people: staff moderate them (feature, make private,
fix a document, manage contributors) but do not create them.

Saves write only the columns the form changed: counters and ``last_used_at`` belong to
triggers on generations, and writing the whole row back would undo a use that happened
while the page was open.
"""

import difflib
import json
import logging
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models, transaction
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from generations.models import AIModel
from stylestacks.compose import compose
from stylestacks.forms import (
    SAMPLE_PROMPT,
    ContributorAdminForm,
    ContributorInlineFormSet,
    PresetImportForm,
    PresetPreviewForm,
    StylePresetAdminForm,
    StylePreviewForm,
    StyleStackAdminForm,
)
from stylestacks.models import (
    StackContributor,
    StackInvite,
    StylePreset,
    StylePresetVersion,
    StyleStack,
    StyleStackVersion,
)
from stylestacks.presets_io import MAX_FILE_BYTES, presets_dumps, presets_export, presets_import, presets_load
from stylestacks.services import style_change_author_set
from velro.admin import BigTableAdminMixin, ReadOnlyInlineMixin, RecentRowsFormSet, RecentRowsInlineMixin
from velro.expressions import UTCTimestamp

logger = logging.getLogger(__name__)

PREVIEW_RESULTS_TEMPLATE = "admin/stylestacks/stylepreset/preview_results.html"

# Previous versions of a style listed on one page of its history.
HISTORY_PAGE = 50


def _changed_columns(form) -> list[str]:
    """The model columns the form changed (the form's fields are model fields)."""
    columns = {field.name for field in form._meta.model._meta.concrete_fields}
    return [name for name in form.changed_data if name in columns]


# --- previews ---------------------------------------------------------------------------


def preview_models(model_ids: list[str]) -> list[tuple[str, AIModel | None]]:
    """(id, model) for each recommended model, None when it left the catalog; with no
    recommendation, the first active image model and the first active video model."""
    if model_ids:
        found = AIModel.objects.in_bulk(model_ids)
        return [(model_id, found.get(model_id)) for model_id in model_ids]
    defaults = [
        AIModel.objects.filter(is_active=True, kind=kind).order_by("sort_order", "id").first()
        for kind in (AIModel.Kind.IMAGE, AIModel.Kind.VIDEO)
    ]
    return [(model.pk, model) for model in defaults if model is not None]


def preview_compose(style, model_id: str, model: AIModel | None, prompt: str) -> dict:
    """What ``model`` would receive for ``prompt`` with this style, or the reason it
    cannot be composed (``error``); never raises."""
    result = {
        "model": model_id,
        "model_name": model.display_name if model else "",
        "kind": model.kind if model else "",
        "prompt": "",
        "negative_prompt": "",
        "parameters": {},
        "metadata": {},
        "error": None,
    }
    if model is None:
        result["error"] = "This model is not in the AI model catalog."
        return result
    try:
        composed = compose(style, model, prompt)
    except ValidationError as exc:
        result["error"] = " ".join(exc.messages)
    except Exception as exc:
        # A preview must never take the change page down; the real error is logged.
        logger.exception("Preset preview failed for model %s", model_id)
        result["error"] = f"Preview failed: {type(exc).__name__}: {exc}"
    else:
        result.update(
            prompt=composed.prompt,
            negative_prompt=composed.negative_prompt,
            parameters=composed.parameters,
            metadata=composed.metadata,
        )
    return result


def _for_display(previews: list[dict]) -> list[dict]:
    """The previews with their parameters as indented JSON, for the HTML pages."""
    return [
        {**preview, "parameters_json": json.dumps(preview["parameters"], indent=2, ensure_ascii=False)}
        for preview in previews
    ]


# --- the style editor, live preview and history (presets and stacks) --------------------


def pretty_style(style) -> str:
    """The document as staff read it in a diff: indented, keys sorted."""
    return json.dumps(style, ensure_ascii=False, indent=2, sort_keys=True)


def style_diff(old, new, old_label: str, new_label: str) -> list[dict]:
    """A unified diff of two documents as rows ``{kind, text}`` (kind: head, hunk, del,
    add, same) for the template, which escapes the text."""
    rows = []
    lines = difflib.unified_diff(
        pretty_style(old).splitlines(), pretty_style(new).splitlines(), old_label, new_label, n=3, lineterm=""
    )
    for line in lines:
        if line.startswith(("---", "+++")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("-"):
            kind = "del"
        elif line.startswith("+"):
            kind = "add"
        else:
            kind = "same"
        rows.append({"kind": kind, "text": line})
    return rows


class StyleEditorAdminMixin:
    """The structured editor (the form's ``editor``, rendered by
    ``admin/stylestacks/style_change_form.html``), its live preview and the history of
    the style with restore, for a model with a ``style`` document and versions.

    ``models_field`` names the field whose models the preview composes for;
    ``version_model`` / ``version_fk`` the versions kept by the keep_version trigger.
    """

    models_field = ""
    version_model = None
    version_fk = ""

    class Media:
        css = {"all": ("stylestacks/style_editor.css",)}
        js = ("stylestacks/style_editor.js",)

    def style_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("preview/", view(self.style_preview_view), name=f"{prefix}_style_preview"),
            path("<path:object_id>/style-history/", view(self.style_history_view), name=f"{prefix}_style_history"),
            path(
                "<path:object_id>/style-history/<int:version>/",
                view(self.style_version_view),
                name=f"{prefix}_style_version",
            ),
            path(
                "<path:object_id>/style-history/<int:version>/restore/",
                view(self.style_restore_view),
                name=f"{prefix}_style_restore",
            ),
        ]

    def save_model(self, request, obj, form, change):
        # The version trigger names the staff member as the author of a style change.
        style_change_author_set(user=request.user)
        if change:
            obj.save(update_fields=_changed_columns(form))
        else:
            obj.save()

    def style_preview_view(self, request):
        """POST the change page's fields (unsaved): the composed prompt, negative prompt and
        parameters per model, as JSON with an HTML fragment; field errors are a 400."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = StylePreviewForm(request.POST, models_field=self.models_field)
        if not form.is_valid():
            return JsonResponse({"errors": form.all_errors()}, status=400)
        style = form.cleaned_data["style"]
        prompt = form.cleaned_data["preview_prompt"] or SAMPLE_PROMPT
        model = form.cleaned_data["preview_model"]
        pairs = [(model.pk, model)] if model else preview_models(form.cleaned_data.get(self.models_field) or [])
        previews = [preview_compose(style, model_id, found, prompt) for model_id, found in pairs]
        html = render_to_string(
            PREVIEW_RESULTS_TEMPLATE, {"previews": _for_display(previews), "prompt": prompt, "show_try_link": False}
        )
        body = {"document": style, "prompt": prompt, "previews": previews, "html": html}
        if request.POST.get("render_editor"):  # the JSON tab hands its document to the fields
            body["editor_html"] = render_to_string(
                "admin/stylestacks/style_editor_structured.html", {"editor": form.editor}, request=request
            )
        return JsonResponse(body)

    def _style_object(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No such {self.opts.verbose_name}.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _versions(self, obj):
        return self.version_model.objects.filter(**{self.version_fk: obj}).select_related("changed_by")

    def _history_context(self, request, obj, title):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": title,
            "has_view_permission": True,
            "has_change_permission": self.has_change_permission(request, obj),
        }

    def style_history_view(self, request, object_id):
        """The previous documents of the style, newest first, each linking to its diff;
        HISTORY_PAGE a page."""
        obj = self._style_object(request, object_id)
        page = Paginator(self._versions(obj).defer("style").order_by("-version"), HISTORY_PAGE).get_page(
            request.GET.get("page")
        )
        context = {
            **self._history_context(request, obj, f"History of the style: {obj}"),
            "versions": page.object_list,
            "page": page,
        }
        return TemplateResponse(request, "admin/stylestacks/style_history.html", context)

    def style_version_view(self, request, object_id, version):
        """One previous document against the current one (a unified diff) and a restore button."""
        obj = self._style_object(request, object_id)
        found = self._versions(obj).filter(version=version).first()
        if found is None:
            raise Http404("No such version.")
        context = {
            **self._history_context(request, obj, f"Version {version} of the style: {obj}"),
            "version": found,
            "diff": style_diff(found.style, obj.style, f"version {version}", "current"),
            "version_json": pretty_style(found.style),
        }
        return TemplateResponse(request, "admin/stylestacks/style_version.html", context)

    def style_restore_view(self, request, object_id, version):
        """POST: the style becomes that version's document; the current one is kept as a
        new version by the trigger. Needs the change permission."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self._style_object(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        found = self._versions(obj).filter(version=version).first()
        if found is None:
            raise Http404("No such version.")
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        with transaction.atomic():
            locked = self.model.objects.select_for_update().get(pk=obj.pk)
            if locked.style == found.style:
                self.message_user(request, f"The style already is version {version}; nothing changed.", messages.INFO)
                return HttpResponseRedirect(change_url)
            style_change_author_set(user=request.user)
            locked.style = found.style
            locked.save(update_fields=["style"])
            self.log_change(request, locked, f"Restored the style of version {version}.")
        self.message_user(
            request,
            f"Restored the style of version {version}; the previous one is kept as a version.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        prefix = f"admin:{self.opts.app_label}_{self.opts.model_name}"
        context["style_preview_url"] = reverse(f"{prefix}_style_preview")
        if obj is not None and obj.pk is not None:
            context["style_history_url"] = reverse(f"{prefix}_style_history", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- presets ----------------------------------------------------------------------------


@admin.register(StylePreset)
class StylePresetAdmin(StyleEditorAdminMixin, admin.ModelAdmin):
    """The preset library. Active presets are public (GET /api/v1/presets)."""

    form = StylePresetAdminForm
    list_display = (
        "name",
        "slug",
        "category",
        "subcategory",
        "is_active",
        "is_featured",
        "rating",
        "usage_count",
        "sort_order",
    )
    list_editable = ("sort_order",)
    list_filter = ("category", "is_active", "is_featured", "complexity_level")
    search_fields = ("name", "slug", "description", "tags")
    ordering = ("sort_order", "name")
    prepopulated_fields = {"slug": ("name",)}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # every form the admin builds
    readonly_fields = ("preview", "usage_count", "last_used_at", "created_at", "updated_at")
    actions = ["activate", "deactivate", "feature", "unfeature", "export_json"]
    models_field = "recommended_models"
    version_model = StylePresetVersion
    version_fk = "preset"
    fieldsets = (
        # Short fields share a line: the page (with the editor) stays within a few screens.
        (
            None,
            {"fields": (("name", "slug"), ("category", "subcategory", "complexity_level"), "description", "creator")},
        ),
        (
            "Publishing",
            {"fields": (("is_active", "is_featured"), ("sort_order", "rating"), "tags", "preview_image_url")},
        ),
        ("Models", {"fields": ("recommended_models",)}),
        ("Style", {"fields": ("style",)}),  # the structured editor and its JSON tab
        ("Preview", {"fields": ("preview",)}),
        ("Usage", {"fields": (("usage_count", "last_used_at"), ("created_at", "updated_at"))}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing saved to preview yet
            return [fieldset for fieldset in self.fieldsets if fieldset[0] != "Preview"]
        return self.fieldsets

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name=f"{prefix}_import"),
            path("<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view), name=f"{prefix}_preview"),
            *self.style_urls(),
            *super().get_urls(),
        ]

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_import_permission": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "preview_form": PresetPreviewForm()}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Preview")
    def preview(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        # From the saved row: after a rejected POST the form's instance holds unsaved values.
        saved = StylePreset.objects.filter(pk=obj.pk).values("style", "recommended_models").first()
        if saved is None:
            return "—"
        previews = [
            preview_compose(saved["style"], model_id, model, SAMPLE_PROMPT)
            for model_id, model in preview_models(saved["recommended_models"])
        ]
        url = reverse("admin:stylestacks_stylepreset_preview", args=[obj.pk])
        return render_to_string(
            PREVIEW_RESULTS_TEMPLATE,
            {"previews": _for_display(previews), "prompt": SAMPLE_PROMPT, "preview_url": url, "show_try_link": True},
        )

    def preview_view(self, request, object_id):
        """GET ``?model=<id>&prompt=…&format=json|html``: the composed prompt, negative
        prompt and parameters of the saved preset. Bad input is a 400 with messages."""
        preset = self.get_object(request, unquote(object_id))
        if preset is None:
            raise Http404("No such preset.")
        if not self.has_view_or_change_permission(request, preset):
            raise PermissionDenied
        form = PresetPreviewForm(request.GET)
        wants_json = request.GET.get("format") == "json"
        if not form.is_valid():
            errors = {name: [str(message) for message in messages_] for name, messages_ in form.errors.items()}
            if wants_json:
                return JsonResponse({"errors": errors}, status=400)
            return self._preview_page(request, preset, form, previews=[], prompt="", status=400)
        prompt = form.cleaned_data["prompt"]
        model = form.cleaned_data["model"]
        pairs = [(model.pk, model)] if model else preview_models(preset.recommended_models)
        previews = [preview_compose(preset.style, model_id, found, prompt) for model_id, found in pairs]
        if wants_json:
            return JsonResponse({"preset": preset.slug, "prompt": prompt, "previews": previews})
        return self._preview_page(request, preset, form, previews=previews, prompt=prompt)

    def _preview_page(self, request, preset, form, *, previews, prompt, status=200):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": preset,
            "title": f"Preview: {preset.name}",
            "form": form,
            "previews": _for_display(previews),
            "prompt": prompt,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/stylestacks/stylepreset/preview.html", context, status=status)

    def import_view(self, request):
        """Upload a presets file; a dry run (the default) only reports. An invalid file
        shows every error and writes nothing."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        report, errors = None, []
        if request.method == "POST":
            form = PresetImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    if upload.size > MAX_FILE_BYTES:
                        raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
                    report = presets_import(presets_load(upload.read()), dry_run=form.cleaned_data["dry_run"])
                except ValidationError as exc:
                    errors = exc.messages
                else:
                    self._log_import(request, report)
                    self.message_user(request, report.summary(), messages.SUCCESS)
        else:
            form = PresetImportForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import presets",
            "form": form,
            "report": report,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/stylestacks/stylepreset/import.html", context)

    def _log_import(self, request, report):
        if report.dry_run:
            return
        written = {item.slug: item for item in report.items if item.action != "unchanged"}
        for preset in StylePreset.objects.filter(slug__in=written):
            item = written[preset.slug]
            if item.action == "create":
                self.log_addition(request, preset, "Imported from a presets file.")
            else:
                self.log_change(request, preset, f"Imported from a presets file: {', '.join(item.changed)}.")

    def _set_flag(self, request, queryset, field: str, value: bool, done: str, state: str):
        """Set ``field`` on the selected presets that differ, log each, report counts."""
        selected = queryset.count()
        to_change = list(queryset.exclude(**{field: value}).select_related(None).only("pk", "name"))
        changed = (
            StylePreset.objects.filter(pk__in=[p.pk for p in to_change])
            .exclude(**{field: value})
            .update(**{field: value})
        )
        for preset in to_change:
            self.log_change(request, preset, f"{done} (bulk action).")
        message = f"{done} {changed} preset(s)."
        if selected - changed:
            message += f" {selected - changed} already {state}."
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)

    @admin.action(description="Activate (show in the library)", permissions=["change"])
    def activate(self, request, queryset):
        self._set_flag(request, queryset, "is_active", True, "Activated", "active")

    @admin.action(description="Deactivate (hide from the library)", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_flag(request, queryset, "is_active", False, "Deactivated", "inactive")

    @admin.action(description="Feature", permissions=["change"])
    def feature(self, request, queryset):
        self._set_flag(request, queryset, "is_featured", True, "Featured", "featured")

    @admin.action(description="Unfeature", permissions=["change"])
    def unfeature(self, request, queryset):
        self._set_flag(request, queryset, "is_featured", False, "Unfeatured", "not featured")

    @admin.action(description="Export selected as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        body = presets_dumps(presets_export(queryset))
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="style-presets-{stamp}.json"'
        return response


# --- style stacks -----------------------------------------------------------------------


class UserIdWidget(ForeignKeyRawIdWidget):
    """The raw id box without the name Django looks up beside it, a query per row: the
    contributor's row shows the email already."""

    def label_and_url_for_value(self, value):
        return "", ""


class StackContributorInline(RecentRowsInlineMixin, admin.TabularInline):
    """People invited to the stack, the newest RECENT. Staff add one by user id, change
    the role or remove them; the email is copied from the account and the inviter is the
    staff member."""

    model = StackContributor
    fk_name = "stack"
    form = ContributorAdminForm
    formset = ContributorInlineFormSet
    fields = ("user", "email", "role", "invited_by", "created_at")
    readonly_fields = ("email", "invited_by", "created_at")
    raw_id_fields = ("user",)
    ordering = ("-created_at", "-id")
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "invited_by")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["widget"] = UserIdWidget(db_field.remote_field, self.admin_site)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class StackInviteInline(RecentRowsInlineMixin, admin.TabularInline):
    """The newest RECENT invites waiting for their address to sign up (it then becomes a contributor, by
    a trigger). Staff may withdraw one; invites are made by the owner through the API,
    whose answer does not tell whether an address is registered."""

    model = StackInvite
    fk_name = "stack"
    fields = ("email", "role", "invited_by", "created_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    extra = 0
    verbose_name = "pending invite"
    verbose_name_plural = "pending invites"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invited_by")


class StyleVersionsFormSet(RecentRowsFormSet):
    """The newest versions, then a link to the style's whole history."""

    @cached_property
    def all_url(self) -> str:
        return reverse("admin:stylestacks_stylestack_style_history", args=[self.instance.pk])


class StyleStackVersionInline(RecentRowsInlineMixin, ReadOnlyInlineMixin, admin.TabularInline):
    """The newest previous documents (kept by the keep_version trigger). The documents
    themselves are left out: up to 64 KB each, on every page view."""

    model = StyleStackVersion
    formset = StyleVersionsFormSet
    fk_name = "stack"
    fields = ("version", "changed_by", "created_at")
    readonly_fields = fields
    ordering = ("-version",)
    verbose_name_plural = "previous versions"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by").defer("style")


@admin.register(StyleStack)
class StyleStackAdmin(BigTableAdminMixin, StyleEditorAdminMixin, admin.ModelAdmin):
    """Moderation of people's stacks. A change of ``style`` here also bumps the
    version and keeps the previous document (trigger keep_version)."""

    form = StyleStackAdminForm
    list_display = (
        "name",
        "owner_email",
        "visibility",
        "category",
        "is_featured",
        "is_marketplace",
        "usage_count",
        "fork_count",
        "version",
        "created",
    )
    list_filter = ("visibility", "category", "is_featured", "is_marketplace")
    # What BigTableAdminMixin.get_search_results searches, by the shape of the term: the
    # words on the stack's search_vector (name, tags, description; style_stacks_search_gin).
    search_fields = ("^user__email", "=id", "name", "tags", "description")
    search_help_text = (
        "An email or its beginning (that person's stacks), a stack's id, or words of the name, tags or "
        "description (each matches the words that start with it)."
    )
    words_vector = "search_vector"
    words_config = "english"  # as the trigger builds search_vector
    list_select_related = ("user",)
    ordering = (UTCTimestamp("created_at").desc(), "-id")  # style_stacks_admin_order_idx
    owner_ordering = ("-created_at", "-id")  # style_stacks_user_idx
    # Newest first only: sorting the whole table by a counter or a name would be a full
    # sort on every page view.
    sortable_by = ("created",)
    raw_id_fields = ("user", "parent", "created_from_preset")
    readonly_fields = (
        "id",
        "created_from",
        "version",
        "usage_count",
        "fork_count",
        "last_used_at",
        "search_vector",
        "created_at",
        "updated_at",
    )
    inlines = [StackContributorInline, StackInviteInline, StyleStackVersionInline]
    actions = ["feature", "unfeature", "make_private"]
    models_field = "compatible_models"
    version_model = StyleStackVersion
    version_fk = "stack"
    fieldsets = (
        (None, {"fields": ("id", "user", "name", "description", "tags", "category", "visibility")}),
        ("Staff flags", {"fields": ("is_featured", "is_marketplace", "price_credits")}),
        ("Models", {"fields": ("compatible_models", "version")}),
        ("Style", {"fields": ("style",)}),  # the structured editor and its JSON tab
        ("Origin", {"fields": ("created_from", "parent", "created_from_preset")}),
        ("Usage", {"fields": ("usage_count", "fork_count", "last_used_at", "search_vector")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def has_add_permission(self, request):
        return False  # stacks are made by their owners (API), from scratch, a preset or a fork

    def get_urls(self):
        return [*self.style_urls(), *super().get_urls()]

    @admin.display(description="owner", ordering="user__email")
    def owner_email(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[obj.user_id]), obj.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not StackContributor:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)
        for contributor in formset.deleted_objects:
            contributor.delete()
        for contributor, fields in formset.changed_objects:
            fields = list(fields)
            if "user" in fields:
                contributor.email = contributor.user.email
                fields.append("email")
            contributor.save(update_fields=fields)
        for contributor in formset.new_objects:
            contributor.email = contributor.user.email
            contributor.invited_by = request.user
            contributor.save()

    def _update(self, request, queryset, values: dict, done: str):
        """Apply ``values`` to the selected stacks that differ, log each, return the count."""
        differs = Q()
        for name, value in values.items():
            differs |= ~Q(**{name: value})
        to_change = list(queryset.filter(differs).select_related(None).only("pk", "name"))
        changed = StyleStack.objects.filter(pk__in=[s.pk for s in to_change]).update(**values)
        for stack in to_change:
            self.log_change(request, stack, f"{done} (bulk action).")
        return changed

    @admin.action(description="Feature (public stacks only)", permissions=["change"])
    def feature(self, request, queryset):
        selected = queryset.count()
        public = queryset.filter(visibility=StyleStack.Visibility.PUBLIC)
        changed = self._update(request, public, {"is_featured": True}, "Featured")
        message = f"Featured {changed} stack(s)."
        not_public = selected - public.count()
        if not_public:
            message += f" Skipped {not_public} that are not public."
        if selected - changed - not_public:
            message += f" {selected - changed - not_public} already featured."
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)

    @admin.action(description="Unfeature", permissions=["change"])
    def unfeature(self, request, queryset):
        selected = queryset.count()
        changed = self._update(request, queryset, {"is_featured": False}, "Unfeatured")
        message = f"Unfeatured {changed} stack(s)."
        if selected - changed:
            message += f" {selected - changed} not featured."
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)

    @admin.action(description="Make private (and unfeature)", permissions=["change"])
    def make_private(self, request, queryset):
        # A private stack is out of explore, so it is unfeatured too.
        selected = queryset.count()
        changed = self._update(
            request, queryset, {"visibility": StyleStack.Visibility.PRIVATE, "is_featured": False}, "Made private"
        )
        message = f"Made {changed} stack(s) private."
        if selected - changed:
            message += f" {selected - changed} already private."
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)
