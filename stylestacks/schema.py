"""The style document (version 2): its JSON Schema, the upgrade from the old shape, and
validation with messages that name the JSON path at fault.

The schema lives next to this module in ``style_document.schema.json`` (JSON Schema
draft 2020-12); it is loaded once and is served to clients as-is. A v2 document::

    {
      "schema_version": 2,
      "base_json": {...free-form...},
      "prompt_blocks": {
        "style": {"text": "high-contrast black and white", "weight": 1.2, "enabled": true},
        "keywords": {"items": ["noir", "shadows"], "weight": 1, "enabled": true},
        ...
      },
      "model_adaptations": {"fal-ai/veo3": {"prompt_blocks": {"motion": {"text": "slow dolly"}},
                                            "parameters": {...}}},
      "lora_configs": {"noir": {"model_id": "fal-ai/flux/dev", "lora_path": "...", "weight": 0.8,
                                "trigger_words": ["noirstyle"]}},
      "persistent_elements": [{"type": "character", "description": "...", "weight": 1.5}],
      "parameters": {...default generation parameters...}
    }

Rules:

* Text blocks (``TEXT_BLOCKS``) hold ``text`` (≤ 2000 characters); list blocks
  (``LIST_BLOCKS``) hold ``items`` (≤ 50 strings of ≤ 200 characters). Both carry
  ``weight`` (0–2, default 1) and ``enabled`` (default true). Adaptation blocks have the
  same shapes with every field optional: they override field by field.
* Every object is closed (unknown keys are errors) except ``base_json`` and the
  ``parameters`` objects, which are free-form.
* The old shape (no ``schema_version``) stored blocks as plain strings and lists, and
  adaptations as plain block overrides (``{"motion": "slow dolly"}``); ``upgrade``
  converts it. A document with any ``schema_version`` is taken as given, so a wrong
  version is reported by validation instead of being guessed at.
* ``validate_document`` upgrades, checks the serialized size (≤ ``MAX_DOCUMENT_BYTES``),
  validates, and fills the defaults of blocks (weight, enabled), LoRAs (weight) and
  persistent elements (weight). Adaptation blocks get no defaults: a default there would
  override the block it adapts.
"""

import copy
import json
import re
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from rest_framework.exceptions import ParseError

from velro.parsers import check_clean

SCHEMA_VERSION = 2
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_ERRORS = 10
DEFAULT_WEIGHT = 1.0
DEFAULT_ENABLED = True

TEXT_BLOCKS: tuple[str, ...] = (
    "description",
    "style",
    "camera",
    "lighting",
    "setting",
    "motion",
    "ending",
    "text",
    "negative",
)
LIST_BLOCKS: tuple[str, ...] = ("elements", "keywords")
BLOCK_NAMES: tuple[str, ...] = TEXT_BLOCKS + LIST_BLOCKS

SCHEMA_PATH = Path(__file__).with_name("style_document.schema.json")
STYLE_SCHEMA: dict = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(STYLE_SCHEMA)
_VALIDATOR = Draft202012Validator(STYLE_SCHEMA)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_REPR = 60


def upgrade(document: Any) -> dict:
    """Return ``document`` in the v2 shape, as a new object (the input is never changed).

    A document with a ``schema_version`` is returned as a deep copy; one without is the
    old shape and is converted. Values the conversion does not recognise are carried over
    unchanged, so validation reports them at their path.
    """
    if not isinstance(document, dict):
        raise ValidationError("The style document must be a JSON object.")
    if "schema_version" in document:
        return copy.deepcopy(document)
    upgraded = copy.deepcopy(document)
    upgraded["schema_version"] = SCHEMA_VERSION
    if isinstance(upgraded.get("prompt_blocks"), dict):
        upgraded["prompt_blocks"] = _upgrade_blocks(upgraded["prompt_blocks"])
    adaptations = upgraded.get("model_adaptations")
    if isinstance(adaptations, dict):
        upgraded["model_adaptations"] = {key: _upgrade_adaptation(value) for key, value in adaptations.items()}
    return upgraded


def _upgrade_block(name: str, value: Any) -> Any:
    """An old block value (a string or a list) as a v2 block; v2-shaped values stay."""
    if isinstance(value, dict):
        return value
    if name in TEXT_BLOCKS:
        return {"text": value}
    if name in LIST_BLOCKS:
        return {"items": value}
    return value  # an unknown block name: validation reports it


def _upgrade_blocks(blocks: dict) -> dict:
    # A null block in the old shape meant "no block".
    return {name: _upgrade_block(name, value) for name, value in blocks.items() if value is not None}


def _upgrade_adaptation(adaptation: Any) -> Any:
    """``{"motion": "x", "parameters": {...}}`` → ``{"prompt_blocks": {"motion": {"text": "x"}},
    "parameters": {...}}``. Keys that are not block names stay where they are."""
    if not isinstance(adaptation, dict):
        return adaptation
    upgraded = {key: value for key, value in adaptation.items() if key not in BLOCK_NAMES}
    blocks = _upgrade_blocks({key: value for key, value in adaptation.items() if key in BLOCK_NAMES})
    if blocks:
        existing = upgraded.get("prompt_blocks")
        upgraded["prompt_blocks"] = {**existing, **blocks} if isinstance(existing, dict) else blocks
    return upgraded


def validate_document(document: Any) -> dict:
    """Return the normalised v2 form of ``document`` (old or v2 shape), or raise
    ``ValidationError`` with up to ``MAX_ERRORS`` messages, sorted by path, each naming
    the JSON path at fault (``persistent_elements[3].weight: 3 is greater than …``)."""
    upgraded = upgrade(document)
    try:
        check_clean(upgraded)  # PostgreSQL's jsonb cannot hold NUL characters
    except ParseError as exc:
        raise ValidationError(f"The style document is not accepted: {exc.detail}") from exc
    try:
        size = len(json.dumps(upgraded, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"The style document is not valid JSON: {exc}") from exc
    if size > MAX_DOCUMENT_BYTES:
        raise ValidationError(f"The style document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes.")
    errors = sorted(_VALIDATOR.iter_errors(upgraded), key=_error_sort_key)
    if errors:
        raise ValidationError([_error_message(error) for error in errors[:MAX_ERRORS]])
    return _fill_defaults(upgraded)


def _fill_defaults(document: dict) -> dict:
    for block in document.get("prompt_blocks", {}).values():
        block.setdefault("weight", DEFAULT_WEIGHT)
        block.setdefault("enabled", DEFAULT_ENABLED)
    for lora in document.get("lora_configs", {}).values():
        lora.setdefault("weight", DEFAULT_WEIGHT)
    for element in document.get("persistent_elements", []):
        element.setdefault("weight", DEFAULT_WEIGHT)
    return document


def render_path(path: Any) -> str:
    """``["persistent_elements", 3, "weight"]`` → ``persistent_elements[3].weight``; keys
    that are not identifiers (model ids) are quoted: ``model_adaptations["fal-ai/veo3"]``."""
    rendered = ""
    for part in path:
        if isinstance(part, int):
            rendered += f"[{part}]"
        elif _IDENTIFIER.match(part):
            rendered += f".{part}" if rendered else part
        else:
            rendered += f"[{json.dumps(part, ensure_ascii=False)}]"
    return rendered


def _error_sort_key(error: SchemaValidationError) -> tuple:
    # Indices sort numerically and before keys, so the order never compares int with str.
    parts = tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in error.absolute_path)
    return parts, error.message


def _short_repr(value: Any) -> str:
    """A repr short enough for a message: ``'xxxx…'``, ``[...]``, ``{...}``."""
    text = repr(value)
    if len(text) <= _MAX_REPR:
        return text
    if isinstance(value, str):
        short = repr(value[: _MAX_REPR // 2])
        return short[:-1] + "…" + short[-1]
    if isinstance(value, list):
        return "[...]"
    if isinstance(value, dict):
        return "{...}"
    return text[:_MAX_REPR] + "…"


def _error_message(error: SchemaValidationError) -> str:
    message = error.message
    long_repr = repr(error.instance)
    if len(long_repr) > _MAX_REPR:
        message = message.replace(long_repr, _short_repr(error.instance))
    where = render_path(error.absolute_path)
    return f"{where}: {message}" if where else message
