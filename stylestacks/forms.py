"""The admin's forms for presets and style stacks. The style document, tags and model
ids go through the same rules as the API and the preset import (``presets_io``), so
a bad document is an error on its field naming the JSON path, never a broken row."""

from django import forms
from django.core.exceptions import ValidationError

from generations.forms import PrettyJSONField
from generations.models import AIModel
from stylestacks.models import STACK_CATEGORIES, Category, StackContributor, StylePreset, StyleStack
from stylestacks.presets_io import model_ids_clean, preset_style_clean, preset_tags_clean

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


class StyleDocumentFormMixin:
    """``clean_style`` and ``clean_tags`` shared by the preset and stack forms."""

    def clean_style(self):
        # An emptied textarea means an empty document, not SQL NULL (the column is NOT NULL).
        return preset_style_clean(self.cleaned_data["style"])

    def clean_tags(self):
        return preset_tags_clean(self.cleaned_data["tags"])


class StylePresetAdminForm(StyleDocumentFormMixin, forms.ModelForm):
    """A preset as staff edit it."""

    tags = CommaSeparatedField(required=False, help_text="Comma-separated; lower-cased, at most 20.")
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

    tags = CommaSeparatedField(required=False, help_text="Comma-separated; lower-cased, at most 20.")
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


class ContributorInlineFormSet(forms.BaseInlineFormSet):
    """The owner is never also a contributor of their own stack."""

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
