"""Presets as JSON files: export, and an import that validates everything before it
writes anything. Shared by the ``export_presets`` / ``import_presets`` commands and the
admin (an export action and an import page).

A file is a JSON list with one object per preset, keyed by ``slug``, holding the fields
in ``EXPORT_FIELDS`` (never ids, counters or dates)::

    [{"slug": "film-noir", "name": "Film Noir", "category": "genre", ..., "style": {...}}]

On import, a field an entry leaves out keeps its current value (update) or the model's
default (create). The same rules as the admin's edit form apply: ``style`` is validated
and normalised by ``validate_document``, tags are lower-cased and de-duplicated (at most
20), recommended models must be in the AI model catalog.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from generations.models import AIModel
from stylestacks.models import StylePreset
from stylestacks.schema import validate_document
from stylestacks.services import normalise_tags

# The editable fields, in the order a file lists them.
EXPORT_FIELDS: tuple[str, ...] = (
    "slug",
    "name",
    "category",
    "subcategory",
    "description",
    "creator",
    "complexity_level",
    "tags",
    "recommended_models",
    "preview_image_url",
    "is_active",
    "is_featured",
    "rating",
    "sort_order",
    "style",
)
TEXT_FIELDS = (
    "slug",
    "name",
    "category",
    "subcategory",
    "description",
    "creator",
    "complexity_level",
    "preview_image_url",
)
FLAG_FIELDS = ("is_active", "is_featured")
LIST_FIELDS = ("tags", "recommended_models")

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ERRORS = 200

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ImportItem:
    """What importing one entry does: ``create``, ``update`` (of ``changed`` fields) or
    ``unchanged``."""

    slug: str
    action: str
    changed: tuple[str, ...] = ()

    def describe(self) -> str:
        """``create`` / ``update: name, style`` / ``unchanged``."""
        return f"{UPDATE}: {', '.join(self.changed)}" if self.action == UPDATE else self.action


@dataclass
class ImportReport:
    """The outcome of ``presets_import``, one item per entry in file order."""

    dry_run: bool
    items: list[ImportItem] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for item in self.items if item.action == action)

    @property
    def created(self) -> int:
        return self.count(CREATE)

    @property
    def updated(self) -> int:
        return self.count(UPDATE)

    @property
    def unchanged(self) -> int:
        return self.count(UNCHANGED)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"Dry run: {self.created} to create, {self.updated} to update, {self.unchanged} unchanged. "
                "Nothing was written."
            )
        return f"Imported: {self.created} created, {self.updated} updated, {self.unchanged} unchanged."


# --- shared field rules (the admin's forms use them too) ------------------------------


def preset_style_clean(style: Any) -> dict:
    """The normalised v2 document, or ValidationError with messages naming the JSON path."""
    return validate_document({} if style is None else style)


def preset_tags_clean(tags: Iterable[Any] | None) -> list[str]:
    """Lower-cased, stripped, de-duplicated tags (at most 20), or ValidationError."""
    try:
        return normalise_tags(tags)
    except ValidationError as exc:
        raise ValidationError(exc.messages) from exc


def model_ids_clean(ids: Iterable[Any] | None, *, known: set[str] | None = None) -> list[str]:
    """The ids de-duplicated in order; ValidationError unless each is in the AI model
    catalog (active or not: a preset may recommend a model that is paused for now).
    ``known`` spares the query when the caller already has the catalog's ids."""
    cleaned: list[str] = []
    for model_id in ids or []:
        model_id = str(model_id).strip()
        if model_id and model_id not in cleaned:
            cleaned.append(model_id)
    if known is None:
        known = set(AIModel.objects.filter(pk__in=cleaned).values_list("pk", flat=True))
    unknown = [model_id for model_id in cleaned if model_id not in known]
    if unknown:
        raise ValidationError(f"Unknown AI model(s): {', '.join(unknown)}.")
    return cleaned


# --- export -----------------------------------------------------------------------------


def presets_export(queryset) -> list[dict]:
    """One plain dict per preset (``EXPORT_FIELDS``, in that order), sorted by slug, with
    the document's keys sorted, so exporting the same presets gives the same file."""
    entries = []
    for preset in queryset.order_by("slug"):
        entry = {name: getattr(preset, name) for name in EXPORT_FIELDS}
        entry["tags"] = list(preset.tags)
        entry["recommended_models"] = list(preset.recommended_models)
        entry["rating"] = float(preset.rating)
        entry["style"] = json.loads(json.dumps(preset.style, sort_keys=True))
        entries.append(entry)
    return entries


def presets_dumps(entries: list[dict]) -> str:
    """The file's text: indent 2, keys in the entries' order, a final newline."""
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


# --- import -----------------------------------------------------------------------------


def presets_load(data: bytes | str) -> list:
    """The entries of a file's content, or ValidationError when it is not a JSON list."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError("The file is not UTF-8 text.") from exc
    try:
        entries = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"The file is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ValidationError("The file must hold a JSON list of presets.")
    return entries


def presets_import(
    entries: list,
    *,
    dry_run: bool,
    progress: Callable[[int, int, ImportItem], None] | None = None,
) -> ImportReport:
    """Create or update (by slug) one preset per entry, all or nothing.

    Every entry is checked first: its fields' types, the model's field rules and
    constraints, the style document, the recommended models, and that no slug appears
    twice. Any problem raises ``ValidationError`` listing every one as
    ``"<slug>: <field>: <message>"`` (``"entry 3: ..."`` when the slug is missing), and
    nothing is written. With ``dry_run`` nothing is written either; the report says what
    would happen. Otherwise all changes are applied in one transaction. ``progress`` is
    called once per entry, in file order, with (position, total, item).
    """
    if not isinstance(entries, list):
        raise ValidationError("The file must hold a JSON list of presets.")
    slugs = [entry.get("slug") for entry in entries if isinstance(entry, dict)]
    with transaction.atomic():
        queryset = StylePreset.objects.filter(slug__in=[s for s in slugs if isinstance(s, str)])
        if not dry_run:
            # Lock the rows we may update, so a concurrent admin edit cannot land between
            # the comparison and the write.
            queryset = queryset.select_for_update()
        existing = {preset.slug: preset for preset in queryset}
        known_models = set(AIModel.objects.values_list("pk", flat=True))

        errors: list[str] = []
        planned: list[tuple[ImportItem, StylePreset]] = []
        seen: dict[str, int] = {}
        for position, entry in enumerate(entries, start=1):
            label, entry_errors, plan = _check_entry(position, entry, existing, known_models)
            if isinstance(entry, dict) and isinstance(entry.get("slug"), str):
                slug = entry["slug"]
                if slug in seen:
                    entry_errors.append(f"{label}: slug: appears more than once (first as entry {seen[slug]}).")
                else:
                    seen[slug] = position
            errors.extend(entry_errors)
            if plan is not None and not entry_errors:
                planned.append(plan)
        if errors:
            if len(errors) > MAX_ERRORS:
                errors = [*errors[:MAX_ERRORS], f"… and {len(errors) - MAX_ERRORS} more error(s)."]
            raise ValidationError(errors)

        report = ImportReport(dry_run=dry_run)
        total = len(planned)
        for position, (item, preset) in enumerate(planned, start=1):
            if not dry_run and item.action == CREATE:
                try:
                    with transaction.atomic():
                        preset.save(force_insert=True)
                except IntegrityError as exc:  # the slug was taken since the lookup above
                    raise ValidationError(f"{item.slug}: slug: was just created elsewhere; import again.") from exc
            elif not dry_run and item.action == UPDATE:
                # Only the changed columns: usage_count and last_used_at belong to a trigger.
                preset.save(update_fields=list(item.changed))
            report.items.append(item)
            if progress is not None:
                progress(position, total, item)
    return report


def _check_entry(
    position: int, entry: Any, existing: dict[str, StylePreset], known_models: set[str]
) -> tuple[str, list[str], tuple[ImportItem, StylePreset] | None]:
    """(label, errors, plan) for one entry. The plan is the item and the instance to
    save: a new one, or the loaded row with the entry's values set (in memory only)."""
    if not isinstance(entry, dict):
        return f"entry {position}", [f"entry {position}: must be a JSON object."], None
    slug = entry.get("slug")
    label = slug if isinstance(slug, str) and slug else f"entry {position}"
    errors: list[str] = []

    unknown = sorted(set(entry) - set(EXPORT_FIELDS))
    if unknown:
        errors.append(f"{label}: unknown field(s): {', '.join(unknown)}.")

    values: dict[str, Any] = {}
    failed: list[str] = []
    for name in EXPORT_FIELDS:
        if name not in entry:
            continue
        try:
            values[name] = _clean_value(name, entry[name], known_models)
        except ValidationError as exc:
            failed.append(name)
            errors.extend(f"{label}: {name}: {message}" for message in exc.messages)

    current = existing.get(slug) if isinstance(slug, str) else None
    preset = StylePreset() if current is None else current
    before = {name: getattr(preset, name) for name in values}
    for name, value in values.items():
        setattr(preset, name, value)
    try:
        # Unique slugs are settled by the lookup above; constraints (rating range,
        # category) and field rules (choices, lengths, URL, slug) are checked here.
        preset.full_clean(exclude=failed, validate_unique=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            where = "" if name == "__all__" else f"{name}: "
            errors.extend(f"{label}: {where}{message}" for message in messages)
    if errors:
        return label, errors, None

    if current is None:
        return label, [], (ImportItem(slug, CREATE), preset)
    changed = tuple(
        name for name in EXPORT_FIELDS if name in values and _differs(name, getattr(preset, name), before[name])
    )
    return label, [], (ImportItem(slug, UPDATE, changed) if changed else ImportItem(slug, UNCHANGED), preset)


def _differs(name: str, new: Any, old: Any) -> bool:
    """Whether importing ``new`` changes the field. A stored document counts as equal
    when its normalised form is (``validate_document`` fills defaults such as weights),
    so re-importing an untouched export reports "unchanged"."""
    if name == "style" and new != old:
        try:
            old = validate_document(old)
        except ValidationError:
            return True
    return new != old


def _clean_value(name: str, value: Any, known_models: set[str]) -> Any:
    """Check a JSON value's type for field ``name`` and apply the field's rules."""
    if name in TEXT_FIELDS:
        if not isinstance(value, str):
            raise ValidationError("must be a string.")
        return value.strip()
    if name in FLAG_FIELDS:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false.")
        return value
    if name in LIST_FIELDS:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValidationError("must be a list of strings.")
        return preset_tags_clean(value) if name == "tags" else model_ids_clean(value, known=known_models)
    if name == "sort_order":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError("must be a whole number.")
        return value
    if name == "rating":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValidationError("must be a number from 0 to 5.")
        try:
            rating = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValidationError("must be a number from 0 to 5.") from exc
        if not rating.is_finite():
            raise ValidationError("must be a number from 0 to 5.")
        return rating
    if name == "style":
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object.")
        return preset_style_clean(value)
    raise AssertionError(f"no rule for {name}")  # EXPORT_FIELDS and the rules above disagree
