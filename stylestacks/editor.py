"""The structured style editor of the admin: one field per part of a style document.

A ``StyleEditor`` turns a v2 document into forms and formsets (initial values), and the
posted forms back into the document. Read-then-write is exact: a normalised document
shown in the fields and posted back untouched is the same document, key for key and
number for number (``1`` stays ``1``, ``1.0`` stays ``1.0``; jsonb keeps the
difference). What the fields cannot show is carried in hidden inputs:

* a block that is in the document with an empty text (or no items) has ``keep_empty``
  set, so it is kept; otherwise a block with nothing in it is left out;
* a top-level section present but empty (``"base_json": {}``) is named in the misc
  form's ``keep`` input, so it is kept too.

Value conventions (also in README): ``base_json`` values are JSON literals when they
parse as JSON (``42``, ``true``, ``["a", "b"]``, ``{"k": 1}``, ``"quoted"``) and plain
strings otherwise; a string that would parse as JSON is shown quoted. One item per line
in list fields (elements, keywords, trigger words); an empty list is left out. Block
overrides of a model adaptation, ``parameters``, and an element's ``pose_weights`` are
JSON objects; an empty textarea leaves the key out.

Field limits mirror the schema (``style_document.schema.json``) so each error lands on
its field or row; whatever the schema still finds in the assembled document is placed
on the row whose JSON path it names (``schema.render_path``), or on the editor.
"""

import json
import math
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from generations.models import AIModel
from stylestacks.schema import (
    DEFAULT_ENABLED,
    DEFAULT_WEIGHT,
    LIST_BLOCKS,
    SCHEMA_VERSION,
    TEXT_BLOCKS,
    render_path,
    validate_document,
)

MAX_TEXT = 2000
MAX_ITEMS = 50
MAX_ITEM_LENGTH = 200
MAX_TRIGGER_WORDS = 20
MAX_ELEMENTS = 10
ELEMENT_TYPES = ("character", "brand_asset", "object", "location", "style_reference")
ADAPTATION_KINDS = (("image", "image — every image model"), ("video", "video — every video model"))
SECTIONS = ("base_json", "prompt_blocks", "model_adaptations", "lora_configs", "persistent_elements")
EXTRA_ROWS = 1

# Form prefixes: HTML names are ``<prefix>-<field>`` (``style_blocks-camera_text``) and
# ``<prefix>-<row>-<field>`` in the row groups (``style_loras-0-weight``).
BLOCKS_PREFIX = "style_blocks"
BASE_PREFIX = "style_base"
ADAPTATIONS_PREFIX = "style_adaptations"
LORAS_PREFIX = "style_loras"
ELEMENTS_PREFIX = "style_elements"
MISC_PREFIX = "style_misc"


# --- fields -----------------------------------------------------------------------------


class JSONNumberField(forms.CharField):
    """A number read as JSON, so ``1`` stays an integer and ``1.0`` a float; empty → None."""

    def __init__(self, *, min_value: float, max_value: float, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 4, "inputmode": "decimal"}))
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", f"{min_value:g}–{max_value:g}")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return json.dumps(value)
        return value

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        try:
            number = json.loads(text)
        except ValueError:
            number = None
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise ValidationError("Enter a number.", code="invalid")
        return number

    def validate(self, value):
        super().validate(value)
        if value is not None and not (self.min_value <= value <= self.max_value):
            raise ValidationError(
                f"Enter a number from {self.min_value:g} to {self.max_value:g}; {value:g} is out of range.",
                code="range",
            )

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != initial or type(self.to_python(data)) is not type(initial)
        except ValidationError:
            return True


class LinesField(forms.CharField):
    """A list of strings, one per line; blank lines are dropped, an empty list is None."""

    def __init__(self, *, max_items: int, max_length_each: int, **kwargs):
        self.max_items, self.max_length_each = max_items, max_length_each
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "cols": 60}))
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("help_text", f"One per line; at most {max_items}, each ≤ {max_length_each} characters.")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
        return lines or None

    def validate(self, value):
        super().validate(value)
        errors = []
        if value and len(value) > self.max_items:
            errors.append(f"At most {self.max_items} items (one per line); this has {len(value)}.")
        for number, line in enumerate(value or [], start=1):
            if len(line) > self.max_length_each:
                errors.append(f"Line {number} has {len(line)} characters; the limit is {self.max_length_each}.")
        if errors:
            raise ValidationError(errors)

    def has_changed(self, initial, data):
        return (initial or None) != self.to_python(data)


class JSONObjectField(forms.CharField):
    """A JSON object typed in a textarea; empty → None (the key is left out)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "cols": 50, "spellcheck": "false"}))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False, indent=1 if len(value) > 1 else None)
        return value

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}.", code="invalid") from exc
        if not isinstance(parsed, dict):
            raise ValidationError('Enter a JSON object, like {"seed": 7}.', code="invalid")
        return parsed

    def has_changed(self, initial, data):
        try:
            return _canonical(initial) != _canonical(self.to_python(data))
        except ValidationError:
            return True


class JSONOrTextField(forms.CharField):
    """A ``base_json`` value: a JSON literal when it parses as one, else the text itself.
    Its initial value is already the text shown (``base_value_display``): posted text
    shown again after an error must not be quoted a second time."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 1, "cols": 60}))
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        return base_value_parse(super().to_python(value))

    def has_changed(self, initial, data):
        return (initial or "") != (data or "")


def base_value_display(value: Any) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value  # plain text that cannot be mistaken for JSON
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def base_value_parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _model_choices() -> list[tuple[str, str]]:
    models = AIModel.objects.order_by("kind", "sort_order", "id").values_list("id", "display_name", "kind")
    return [(model_id, f"{model_id} — {name} ({kind})") for model_id, name, kind in models]


# --- forms ------------------------------------------------------------------------------


class BlocksForm(forms.Form):
    """The eleven prompt blocks: text or items, weight, enabled, and a hidden keep_empty."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in TEXT_BLOCKS + LIST_BLOCKS:
            if name in TEXT_BLOCKS:
                self.fields[f"{name}_text"] = forms.CharField(
                    label=name.capitalize(),
                    required=False,
                    strip=False,
                    max_length=MAX_TEXT,
                    widget=forms.Textarea(
                        attrs={"rows": 3, "cols": 80, "data-limit": MAX_TEXT, "class": "style-counted"}
                    ),
                )
            else:
                self.fields[f"{name}_items"] = LinesField(
                    label=name.capitalize(), max_items=MAX_ITEMS, max_length_each=MAX_ITEM_LENGTH
                )
            self.fields[f"{name}_weight"] = JSONNumberField(label="weight", min_value=0, max_value=2)
            self.fields[f"{name}_enabled"] = forms.BooleanField(label="enabled", required=False, initial=True)
            self.fields[f"{name}_keep_empty"] = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def rows(self):
        """(name, content field, weight field, enabled field, keep field) per block, for the template."""
        for name in TEXT_BLOCKS + LIST_BLOCKS:
            content = f"{name}_text" if name in TEXT_BLOCKS else f"{name}_items"
            yield {
                "name": name,
                "is_text": name in TEXT_BLOCKS,
                "content": self[content],
                "weight": self[f"{name}_weight"],
                "enabled": self[f"{name}_enabled"],
                "keep_empty": self[f"{name}_keep_empty"],
            }

    @staticmethod
    def initial_for(blocks: dict) -> dict:
        initial = {}
        for name, block in blocks.items():
            if not isinstance(block, dict):
                continue
            key = "text" if name in TEXT_BLOCKS else "items"
            initial[f"{name}_{key}"] = block.get(key)
            initial[f"{name}_weight"] = block.get("weight")
            initial[f"{name}_enabled"] = block.get("enabled", DEFAULT_ENABLED)
            initial[f"{name}_keep_empty"] = not block.get(key)
        return initial

    def document_part(self) -> dict:
        blocks = {}
        for name in TEXT_BLOCKS + LIST_BLOCKS:
            key = "text" if name in TEXT_BLOCKS else "items"
            content = self.cleaned_data.get(f"{name}_{key}")
            weight = self.cleaned_data.get(f"{name}_weight")
            enabled = self.cleaned_data.get(f"{name}_enabled")
            keep = self.cleaned_data.get(f"{name}_keep_empty")
            if not (content or keep or (weight is not None and weight != DEFAULT_WEIGHT) or not enabled):
                continue
            block = {key: content or ("" if key == "text" else [])}
            if weight is not None:
                block["weight"] = weight
            block["enabled"] = enabled
            blocks[name] = block
        return blocks


class BaseJSONRowForm(forms.Form):
    key = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"size": 20}))
    value = JSONOrTextField(help_text='JSON (42, true, ["a"], {…}, "text") or plain text')


class AdaptationRowForm(forms.Form):
    model = forms.ChoiceField(choices=())
    prompt_blocks = JSONObjectField(help_text='Block overrides, e.g. {"motion": {"text": "slow dolly"}}')
    parameters = JSONObjectField(help_text="Generation parameters for this model")

    def __init__(self, *args, model_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "———"), ("Kinds", list(ADAPTATION_KINDS)), ("Models", model_choices)]


class LoraRowForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"size": 14}))
    model_id = forms.ChoiceField(choices=(), required=False)
    lora_path = forms.CharField(max_length=2000, widget=forms.TextInput(attrs={"size": 30}))
    weight = JSONNumberField(min_value=0, max_value=2)
    trigger_words = LinesField(
        max_items=MAX_TRIGGER_WORDS,
        max_length_each=MAX_ITEM_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 20}),
    )

    def __init__(self, *args, model_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model_id"].choices = [("", "any model that takes LoRAs"), *model_choices]


class ElementRowForm(forms.Form):
    type = forms.ChoiceField(choices=[("", "———"), *((t, t.replace("_", " ")) for t in ELEMENT_TYPES)])
    description = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}))
    weight = JSONNumberField(min_value=0, max_value=2)
    ref_url = forms.CharField(max_length=2000, required=False, widget=forms.TextInput(attrs={"size": 24}))
    pose_weights = JSONObjectField(widget=forms.Textarea(attrs={"rows": 1, "cols": 20}))
    color_match = forms.TypedChoiceField(
        choices=[("", "—"), ("true", "yes"), ("false", "no")],
        coerce=lambda value: value == "true",
        empty_value=None,
        required=False,
    )

    def clean_pose_weights(self):
        weights = self.cleaned_data["pose_weights"]
        for key, value in (weights or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{key}: each pose weight must be a number.")
        return weights


class MiscForm(forms.Form):
    parameters = JSONObjectField(
        label="Parameters",
        help_text="Default generation parameters (JSON object); keys a model does not declare are ignored for it.",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "spellcheck": "false"}),
    )
    keep = forms.CharField(required=False, widget=forms.HiddenInput)


class RowFormSet(forms.BaseFormSet):
    """Rows of one group; untouched extra rows are skipped, deleted ones too."""

    unique_field: str = ""

    def __init__(self, *args, model_choices=None, **kwargs):
        self.model_choices = model_choices
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        if self.model_choices is not None:
            kwargs["model_choices"] = self.model_choices
        return kwargs

    def live_forms(self):
        # Rows read from the document always count; an extra row counts once typed in.
        return [
            form
            for index, form in enumerate(self.forms)
            if (index < self.initial_form_count() or form.has_changed())
            and not (self.can_delete and self._should_delete_form(form))
        ]

    def clean(self):
        if any(self.errors) or not self.unique_field:
            return
        seen, twice = set(), []
        for form in self.live_forms():
            value = form.cleaned_data.get(self.unique_field)
            if value in seen:
                form.add_error(self.unique_field, "This appears twice; each must be unique.")
                twice.append(value)
            seen.add(value)
        if twice:
            # The row's error is for the page; this one makes the formset invalid (Django
            # counts form errors before clean() runs).
            raise ValidationError(f"{', '.join(twice)}: each {self.unique_field} may appear once.")


def _formset(form, unique_field="", max_num=1000):
    return forms.formset_factory(
        form,
        formset=type(f"{form.__name__}Set", (RowFormSet,), {"unique_field": unique_field}),
        extra=EXTRA_ROWS,
        can_delete=True,
        max_num=max_num,
        validate_max=True,
    )


BaseJSONFormSet = _formset(BaseJSONRowForm, "key")
AdaptationFormSet = _formset(AdaptationRowForm, "model")
LoraFormSet = _formset(LoraRowForm, "name")
ElementFormSet = _formset(ElementRowForm, max_num=MAX_ELEMENTS)


# --- the editor ---------------------------------------------------------------------------


class StyleEditor:
    """The structured view of one style document: ``blocks``, ``base_json``,
    ``adaptations``, ``loras``, ``elements`` and ``misc`` (parameters, keep)."""

    def __init__(self, document: dict | None = None, data=None):
        document = document if isinstance(document, dict) else {}
        self.is_bound = data is not None
        choices = _model_choices()

        def get(key, kind):
            value = document.get(key)
            return value if isinstance(value, kind) else kind()

        initial_blocks = BlocksForm.initial_for(get("prompt_blocks", dict))
        self.blocks = BlocksForm(data, prefix=BLOCKS_PREFIX, initial=initial_blocks)
        self.base_json = BaseJSONFormSet(
            data,
            prefix=BASE_PREFIX,
            initial=[{"key": key, "value": base_value_display(value)} for key, value in get("base_json", dict).items()],
        )
        self.adaptations = AdaptationFormSet(
            data,
            prefix=ADAPTATIONS_PREFIX,
            model_choices=choices,
            initial=[
                {"model": key, "prompt_blocks": value.get("prompt_blocks"), "parameters": value.get("parameters")}
                for key, value in get("model_adaptations", dict).items()
                if isinstance(value, dict)
            ],
        )
        self.loras = LoraFormSet(
            data,
            prefix=LORAS_PREFIX,
            model_choices=choices,
            initial=[
                {"name": key, **value} for key, value in get("lora_configs", dict).items() if isinstance(value, dict)
            ],
        )
        self.elements = ElementFormSet(
            data,
            prefix=ELEMENTS_PREFIX,
            initial=[
                {**element, "color_match": _tristate(element.get("color_match"))}
                for element in get("persistent_elements", list)
                if isinstance(element, dict)
            ],
        )
        keep = [key for key in SECTIONS if key in document and not document[key]]
        self.misc = MiscForm(
            data, prefix=MISC_PREFIX, initial={"parameters": document.get("parameters"), "keep": ",".join(keep)}
        )
        self.formsets = [self.base_json, self.adaptations, self.loras, self.elements]
        self.non_field_errors: list[str] = []
        self._document: dict | None = None

    # Reading the posted editor ----------------------------------------------------------

    def is_valid(self) -> bool:
        """Whether the posted fields make a valid document (then ``document`` holds it,
        normalised). Schema errors the fields did not catch land on their rows."""
        if not self.is_bound:
            return False
        valid = self.blocks.is_valid() & self.misc.is_valid()
        for formset in self.formsets:
            valid &= formset.is_valid()
        if not valid:
            return False
        assembled = self._assemble()
        try:
            self._document = validate_document(assembled)
        except ValidationError as exc:
            self._place_errors(exc.messages)
            return False
        return True

    @property
    def document(self) -> dict:
        if self._document is None:
            raise ValueError("Call is_valid() first.")
        return self._document

    def _assemble(self) -> dict:
        keep = set(filter(None, self.misc.cleaned_data.get("keep", "").split(",")))
        document: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        base = {form.cleaned_data["key"]: form.cleaned_data["value"] for form in self.base_json.live_forms()}
        adaptations = {}
        self._rows = {"model_adaptations": {}, "lora_configs": {}, "persistent_elements": {}}
        for form in self.adaptations.live_forms():
            key = form.cleaned_data["model"]
            adaptations[key] = {
                name: form.cleaned_data[name]
                for name in ("prompt_blocks", "parameters")
                if form.cleaned_data.get(name) is not None
            }
            self._rows["model_adaptations"][render_path(["model_adaptations", key])] = form
        loras = {}
        for form in self.loras.live_forms():
            data = form.cleaned_data
            loras[data["name"]] = {
                name: data[name]
                for name in ("model_id", "lora_path", "weight", "trigger_words")
                if data.get(name) not in (None, "")
            }
            self._rows["lora_configs"][render_path(["lora_configs", data["name"]])] = form
        elements = []
        for form in self.elements.live_forms():
            data = form.cleaned_data
            element = {
                name: data[name]
                for name in ("type", "ref_url", "description", "weight", "pose_weights", "color_match")
                if data.get(name) not in (None, "")
            }
            self._rows["persistent_elements"][render_path(["persistent_elements", len(elements)])] = form
            elements.append(element)
        sections = {
            "base_json": base,
            "prompt_blocks": self.blocks.document_part(),
            "model_adaptations": adaptations,
            "lora_configs": loras,
            "persistent_elements": elements,
        }
        for key in SECTIONS:
            if sections[key] or key in keep:
                document[key] = sections[key]
        if self.misc.cleaned_data.get("parameters") is not None:
            document["parameters"] = self.misc.cleaned_data["parameters"]
        return document

    def _place_errors(self, messages: list[str]) -> None:
        """Each schema message on the field or row its path names, else on the editor."""
        for message in messages:
            path, _, text = message.partition(": ")
            if self._place(path, text or message):
                continue
            self.non_field_errors.append(message)

    def _place(self, path: str, text: str) -> bool:
        if path.startswith("prompt_blocks."):
            parts = path.split(".")
            if len(parts) >= 3:
                name, field = parts[1], parts[2].split("[")[0]
                field_name = f"{name}_{field}"
                if field_name in self.blocks.fields:
                    self.blocks.add_error(field_name, text)
                    return True
        if path == "parameters" or path.startswith("parameters."):
            self.misc.add_error("parameters", text)
            return True
        for rows in getattr(self, "_rows", {}).values():
            for prefix, form in rows.items():
                if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
                    rest = path[len(prefix) :].lstrip(".").split(".")[0].split("[")[0]
                    form.add_error(rest if rest in form.fields else None, text)
                    return True
        return False

    def errors(self) -> dict[str, list[str]]:
        """Every error keyed by the HTML name of its field (``__all__`` for the editor's)."""
        found: dict[str, list[str]] = {}
        forms_ = [self.blocks, self.misc, *(form for formset in self.formsets for form in formset.forms)]
        for form in forms_:
            for name, messages in form.errors.items():
                key = form.add_prefix(name) if name != "__all__" else f"{form.prefix}-__all__"
                found.setdefault(key, []).extend(str(m) for m in messages)
        for formset in self.formsets:
            if formset.non_form_errors():
                found.setdefault(f"{formset.prefix}-__all__", []).extend(formset.non_form_errors())
        if self.non_field_errors:
            found["__all__"] = list(self.non_field_errors)
        return found

    @property
    def media(self):
        return forms.Media()


def _tristate(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")
