import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from generations.models import AIModel
from generations.schemas import check_parameter_schema

PROMPT_GUIDE_TEXT_KEYS = ("strategy", "style", "camera", "motion")
PROMPT_GUIDE_LIST_KEYS = ("keywords", "negatives")
PROMPT_GUIDE_KEYS = (*PROMPT_GUIDE_TEXT_KEYS, *PROMPT_GUIDE_LIST_KEYS, "optimal_length")


def check_prompt_guide(guide: Any) -> None:
    """Raise ValidationError unless ``guide`` has the shape style stacks read: an object
    with only the known keys, text tips, lists of strings and an optimal word range."""
    if not isinstance(guide, dict):
        raise ValidationError("The prompt guide must be a JSON object.")
    unknown = sorted(set(guide) - set(PROMPT_GUIDE_KEYS))
    if unknown:
        raise ValidationError(
            f"Unknown key(s): {', '.join(unknown)}. Allowed: {', '.join(PROMPT_GUIDE_KEYS)}.",
        )
    errors = []
    for key in PROMPT_GUIDE_TEXT_KEYS:
        if key in guide and not isinstance(guide[key], str):
            errors.append(f"{key} must be text.")
    for key in PROMPT_GUIDE_LIST_KEYS:
        if key in guide and not (isinstance(guide[key], list) and all(isinstance(v, str) for v in guide[key])):
            errors.append(f"{key} must be a list of strings.")
    if "optimal_length" in guide:
        errors.extend(_optimal_length_errors(guide["optimal_length"]))
    if errors:
        raise ValidationError(errors)


def _optimal_length_errors(value) -> list[str]:
    if not isinstance(value, dict) or set(value) - {"min_words", "max_words"}:
        return ["optimal_length must be an object with min_words and max_words."]

    def is_count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    errors = [f"optimal_length.{key} must be a whole number ≥ 0." for key in value if not is_count(value[key])]
    low, high = value.get("min_words"), value.get("max_words")
    if not errors and low is not None and high is not None and low > high:
        errors.append("optimal_length.min_words must not exceed max_words.")
    return errors


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, so staff can read and edit a schema in a textarea."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # re-show what was typed, as typed
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class AIModelAdminForm(forms.ModelForm):
    """The catalog entry staff edit. The JSON columns are checked here, so a bad schema
    or guide is an error on its field instead of a catalog that breaks generation."""

    # The database's CHECK constraints, as field limits so the message is on the field.
    credits_cost = forms.IntegerField(min_value=1)
    max_prompt_length = forms.IntegerField(min_value=1, max_value=10_000, initial=2000)

    class Meta:
        model = AIModel
        fields = [
            "id",
            "display_name",
            "description",
            "kind",
            "provider",
            "credits_cost",
            "max_prompt_length",
            "parameter_schema",
            "prompt_guide",
            "supports_lora",
            "supports_negative_prompt",
            "supports_reference_image",
            "is_active",
            "sort_order",
        ]
        field_classes = {"parameter_schema": PrettyJSONField, "prompt_guide": PrettyJSONField}
        widgets = {
            "parameter_schema": forms.Textarea(attrs={"rows": 20, "cols": 90}),
            "prompt_guide": forms.Textarea(attrs={"rows": 14, "cols": 90}),
        }
        help_texts = {
            "parameter_schema": 'A JSON Schema (draft 2020-12) with "type": "object" for a generation\'s parameters.',
            "prompt_guide": (
                "strategy, style, camera, motion (text); keywords, negatives (lists of text); "
                "optimal_length {min_words, max_words}."
            ),
        }

    def clean_parameter_schema(self):
        # An emptied textarea means "no parameters", not SQL NULL (the column is NOT NULL).
        schema = self.cleaned_data["parameter_schema"]
        schema = {} if schema is None else schema
        check_parameter_schema(schema)
        return schema

    def clean_prompt_guide(self):
        guide = self.cleaned_data["prompt_guide"]
        guide = {} if guide is None else guide
        check_prompt_guide(guide)
        return guide
