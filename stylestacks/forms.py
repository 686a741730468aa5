"""The admin's forms for presets and style stacks. The style document, tags and model
ids go through the same rules as the API and the preset import (``presets_io``), so
a bad document is an error on its field naming the JSON path, never a broken row."""

import json

from django import forms
from django.core.exceptions import ValidationError

from generations.forms import PrettyJSONField
from generations.models import AIModel
from stylestacks.editor import StyleEditor
from stylestacks.models import STACK_CATEGORIES, Category, StackContributor, StylePreset, StyleStack
from stylestacks.presets_io import model_ids_clean, preset_style_clean, preset_tags_clean
from velro.admin import RecentRowsFormSet

SAMPLE_PROMPT = "a lone figure at the edge of a cliff"
MAX_PREVIEW_PROMPT = 10_000

STYLE_HELP = (
    "The style document as JSON (schema at /api/v1/style-stacks/schema). It is validated and "
    "saved in its normalised v2 form; old-shape documents are upgraded."
)


class CommaSeparatedField(forms.CharField):
    """A list of short strings typed as ``a, b, c``; empty items are dropped."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [item.strip() for item in text.split(",") if item.strip()]


EDITOR_MODES = [("structured", "Structured"), ("json", "Advanced (JSON)")]


class StyleDocumentFormMixin:
    """The style document from either view, and ``clean_tags``, for the preset and stack
    forms (and the live preview, which posts the same fields).

    ``editor_mode`` (a hidden input the page's tabs set) says which view is saved:
    ``structured`` reads the editor's fields (``self.editor``) and ignores the JSON
    textarea; ``json`` — and a post without the input, as scripts and the tests send —
    reads the textarea. The other view is then rebuilt from the saved document, so both
    always show the same one.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["editor_mode"] = forms.ChoiceField(
            choices=EDITOR_MODES, required=False, initial="structured", widget=forms.HiddenInput
        )
        if self.structured:
            # The textarea is not read: a stale or broken JSON there must not block a save.
            self.fields["style"] = forms.CharField(
                label="Style",
                required=False,
                widget=self.fields["style"].widget,
                help_text=self.fields["style"].help_text,
            )
        document = self.initial.get("style")
        self.editor = StyleEditor(document, data=self.data if self.structured else None)

    @property
    def structured(self) -> bool:
        return self.is_bound and self.data.get(self.add_prefix("editor_mode")) == "structured"

    def clean_style(self):
        if self.structured:
            if not self.editor.is_valid():
                # The errors themselves are on the editor's fields and rows.
                self.add_error(None, "The style has errors: see the fields marked in the structured editor.")
                return self.initial.get("style")
            # Shown again (another field's error): the JSON tab shows what the fields make.
            self.data = self.data.copy()
            self.data[self.add_prefix("style")] = json.dumps(self.editor.document, ensure_ascii=False, indent=2)
            return self.editor.document
        # An emptied textarea means an empty document, not SQL NULL (the column is NOT NULL).
        document = preset_style_clean(self.cleaned_data["style"])
        self.editor = StyleEditor(document)  # the fields show what the JSON tab saves
        return document

    def clean_tags(self):
        return preset_tags_clean(self.cleaned_data["tags"])

    @property
    def changed_data(self):
        """As Django's, but ``style`` counts as changed only when the normalised document
        differs from the saved one, normalised too (``1`` vs ``1.0`` differs: jsonb keeps
        it). So a page saved untouched writes nothing, also for a document stored before
        normalisation (the seeded presets have no default weights)."""
        django_changed = super().changed_data
        changed = [name for name in django_changed if name not in ("style", "editor_mode")]
        cleaned = getattr(self, "cleaned_data", {})
        if "style" in cleaned:
            if _canonical(cleaned["style"]) != _canonical(_normalised(self.initial.get("style"))):
                changed.append("style")
        elif "style" in django_changed:
            changed.append("style")
        return changed


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _normalised(style):
    try:
        return preset_style_clean(style)
    except ValidationError:
        return style


class StylePresetAdminForm(StyleDocumentFormMixin, forms.ModelForm):
    """A preset as staff edit it."""

    tags = CommaSeparatedField(
        required=False,
        widget=forms.TextInput(attrs={"size": 90, "class": "vLargeTextField"}),
        help_text="Comma-separated; lower-cased, at most 20.",
    )
    recommended_models = CommaSeparatedField(
        required=False,
        widget=forms.TextInput(attrs={"size": 90}),
        help_text="Comma-separated AI model ids from the catalog, e.g. fal-ai/flux/dev, fal-ai/veo3.",
    )
    preview_image_url = forms.URLField(max_length=2048, required=False, assume_scheme="https")

    class Meta:
        model = StylePreset
        fields = [
            "slug",
            "name",
            "category",
            "subcategory",
            "description",
            "creator",
            "complexity_level",
            "tags",
            "is_active",
            "is_featured",
            "rating",
            "sort_order",
            "preview_image_url",
            "style",
            "recommended_models",
        ]
        field_classes = {"style": PrettyJSONField}
        widgets = {
            "style": forms.Textarea(attrs={"rows": 28, "cols": 100, "spellcheck": "false"}),
            "description": forms.Textarea(attrs={"rows": 3, "cols": 90}),
        }
        help_texts = {"style": STYLE_HELP}

    def clean_recommended_models(self):
        return model_ids_clean(self.cleaned_data["recommended_models"])


class StyleStackAdminForm(StyleDocumentFormMixin, forms.ModelForm):
    """A stack as staff moderate it; the document is checked like a preset's."""

    tags = CommaSeparatedField(
        required=False,
        widget=forms.TextInput(attrs={"size": 90, "class": "vLargeTextField"}),
        help_text="Comma-separated; lower-cased, at most 20.",
    )
    compatible_models = CommaSeparatedField(required=False, widget=forms.TextInput(attrs={"size": 90}))
    # Stacks have no "artistic" category (a CHECK constraint); presets do.
    category = forms.ChoiceField(
        choices=[(value, label) for value, label in Category.choices if value in STACK_CATEGORIES]
    )

    class Meta:
        model = StyleStack
        fields = [
            "user",
            "name",
            "description",
            "tags",
            "category",
            "visibility",
            "is_featured",
            "is_marketplace",
            "price_credits",
            "style",
            "compatible_models",
            "parent",
            "created_from_preset",
        ]
        field_classes = {"style": PrettyJSONField}
        widgets = {
            "style": forms.Textarea(attrs={"rows": 28, "cols": 100, "spellcheck": "false"}),
            "description": forms.Textarea(attrs={"rows": 3, "cols": 90}),
        }
        help_texts = {"style": STYLE_HELP + " Each change keeps the previous document as a version."}


class ContributorInlineFormSet(RecentRowsFormSet):
    """The newest contributors (velro.admin.RecentRowsFormSet); the owner is never also
    a contributor of their own stack."""

    def clean(self):
        super().clean()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            user = form.cleaned_data.get("user")
            if user is not None and user.pk == self.instance.user_id:
                form.add_error("user", ValidationError("This person owns the stack."))


class ContributorAdminForm(forms.ModelForm):
    class Meta:
        model = StackContributor
        fields = ["user", "role"]


class PresetImportForm(forms.Form):
    file = forms.FileField(help_text="A JSON list of presets, as written by “Export selected as JSON”.")
    dry_run = forms.BooleanField(
        required=False, initial=True, help_text="Only report what would change; write nothing."
    )


class PreviewModelField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.pk} — {obj.display_name} ({obj.kind}{'' if obj.is_active else ', inactive'})"


class PresetPreviewForm(forms.Form):
    """The preview's query string: ``?model=<id>&prompt=…&format=json``. Without a model,
    the preset's recommended models (or the first active image and video models); without
    a prompt, ``SAMPLE_PROMPT``."""

    model = PreviewModelField(
        queryset=AIModel.objects.order_by("kind", "sort_order", "id"),
        required=False,
        empty_label="Recommended models (or the first image and video models)",
    )
    prompt = forms.CharField(
        required=False,
        max_length=MAX_PREVIEW_PROMPT,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 90, "placeholder": SAMPLE_PROMPT}),
    )
    format = forms.ChoiceField(
        choices=[("html", "HTML"), ("json", "JSON")], required=False, initial="html", widget=forms.RadioSelect
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "preview_%s")  # the change page also has a form with ids
        super().__init__(*args, **kwargs)

    def clean_prompt(self):
        return self.cleaned_data["prompt"] or SAMPLE_PROMPT


class StylePreviewForm(StyleDocumentFormMixin, forms.Form):
    """The live preview's input: the change page's own fields for the style (either
    view, per ``editor_mode``) and the models (``models_field``: recommended_models or
    compatible_models), plus an optional ``preview_prompt`` and ``preview_model``."""

    style = PrettyJSONField(required=False)
    preview_prompt = forms.CharField(required=False, max_length=MAX_PREVIEW_PROMPT)
    preview_model = PreviewModelField(queryset=AIModel.objects.all(), required=False)

    def __init__(self, *args, models_field: str, **kwargs):
        self.models_field = models_field
        super().__init__(*args, **kwargs)
        self.fields[models_field] = CommaSeparatedField(required=False)

    def clean(self):
        cleaned = super().clean()
        if self.models_field in cleaned:
            try:
                cleaned[self.models_field] = model_ids_clean(cleaned[self.models_field])
            except ValidationError as exc:
                self.add_error(self.models_field, exc)
        return cleaned

    def all_errors(self) -> dict[str, list[str]]:
        """The form's and the editor's errors, keyed by the HTML names of their fields."""
        errors = {name: [str(m) for m in messages] for name, messages in self.errors.items()}
        if self.structured:
            errors.update(self.editor.errors())
        return errors
