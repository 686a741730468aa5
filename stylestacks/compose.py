"""Composing a generation request from a style document, a model and a person's prompt.

``compose(document, model, prompt, overrides)`` is one pure, deterministic function: no
database, no clock, no randomness; the same inputs give the same ``ComposeResult``.
``model`` is anything with the attributes of ``generations.models.AIModel`` that matter
here (``id``, ``kind``, ``max_prompt_length``, ``prompt_guide``, ``supports_lora``,
``supports_negative_prompt``, ``parameter_schema``).

Rules:

1. The document is validated and normalised (``stylestacks.schema.validate_document``).
   The adaptation keyed by the model's id applies, else the one keyed by its kind
   ("image" / "video"); its blocks are merged field by field over the document's blocks
   (``{"text": "x"}`` replaces only the text).
2. Only enabled blocks with non-empty text or items are used. The person's prompt comes
   first and is never dropped.
3. The strategy is ``prompt_guide["strategy"]``, else by kind (image → keyword_weighted,
   video → descriptive_flow):

   * ``keyword_weighted`` (Flux, SD): comma-separated fragments in the order prompt,
     description, style, setting, lighting, camera, elements, persistent elements, text,
     motion, ending, keywords, LoRA trigger words, then the guide's ``keywords`` that the
     prompt does not already contain. A fragment whose weight is not 1 is written
     ``(text:1.25)``; list items carry their block's weight, persistent elements their own.
   * ``descriptive_flow`` (Veo): sentences in narrative order: prompt, description,
     setting, persistent elements ("Featuring …"), elements, style, lighting, camera,
     motion, ending, text/dialogue, then keywords and LoRA trigger words as a trailing
     phrase. Weights are never written in prose.
   * ``action_focused`` / ``natural_language``: shorter prose: prompt, motion (video
     only), description, persistent elements, elements, setting, style, camera, lighting,
     ending, text; no keyword phrase (LoRA trigger words, if any, trail).

   LoRA trigger words appear only when the model supports LoRAs and the LoRA's
   ``model_id`` is absent or is the model's id. A video always gets a motion sentence:
   the motion block, else ``DEFAULT_MOTION``. (The guide's ``motion`` is advice for
   people writing prompts, such as "subject + verb + direction + speed", not prompt text,
   so it is not pasted into prompts.)
4. Length: while the prompt is longer than ``model.max_prompt_length``, whole units are
   dropped, in this order: the guide's keywords; then the style's blocks and persistent
   elements, lowest weight first, ties broken by ``TRIM_TIES`` (least important first);
   then LoRA trigger words; then, for video, the motion sentence. Dropped units are
   listed in ``metadata["blocks_trimmed"]``. If the bare prompt is still too long it is
   cut at the last word boundary that fits: the result never exceeds the maximum.
5. Negative prompt (only when the model supports one, else ""): the terms of the
   ``negative`` block, the guide's ``negatives`` and ``overrides["negative_prompt"]``,
   joined with ", " and de-duplicated case-insensitively; at most
   ``MAX_NEGATIVE_PROMPT_LENGTH`` characters, dropping the style's and guide's last terms
   first (the request's terms are kept).
6. Parameters: schema defaults ← document ``parameters`` ← adaptation ``parameters`` ←
   ``overrides["parameters"]``. When the model's schema is closed
   (``additionalProperties: false``), keys from the document or adaptation that it does
   not declare are dropped (listed in ``metadata["parameters_dropped"]``), since a style
   also serves other models; keys from the request are never dropped, so an unknown one
   is an error. The result is checked with ``generations.schemas.validate_parameters``,
   which raises ``ValidationError`` on bad values.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ValidationError

from generations.schemas import validate_parameters
from stylestacks.schema import DEFAULT_ENABLED, DEFAULT_WEIGHT, SCHEMA_VERSION, validate_document

KEYWORD_WEIGHTED = "keyword_weighted"
DESCRIPTIVE_FLOW = "descriptive_flow"
ACTION_FOCUSED = "action_focused"
NATURAL_LANGUAGE = "natural_language"
STRATEGIES = (KEYWORD_WEIGHTED, DESCRIPTIVE_FLOW, ACTION_FOCUSED, NATURAL_LANGUAGE)
DEFAULT_STRATEGY = {"image": KEYWORD_WEIGHTED, "video": DESCRIPTIVE_FLOW}

DEFAULT_MOTION = "Subtle, natural motion throughout."
MAX_NEGATIVE_PROMPT_LENGTH = 1000

# Units that are not prompt blocks.
PERSISTENT = "persistent_elements"
LORA_TRIGGERS = "lora_trigger_words"
GUIDE_KEYWORDS = "guide_keywords"

# The order of the units in the prompt, per strategy.
KEYWORD_ORDER = (
    "description",
    "style",
    "setting",
    "lighting",
    "camera",
    "elements",
    PERSISTENT,
    "text",
    "motion",
    "ending",
    "keywords",
    LORA_TRIGGERS,
    GUIDE_KEYWORDS,
)
FLOW_ORDER = (
    "description",
    "setting",
    PERSISTENT,
    "elements",
    "style",
    "lighting",
    "camera",
    "motion",
    "ending",
    "text",
    "keywords",
    LORA_TRIGGERS,
)
SHORT_ORDER = (
    "motion",  # video only
    "description",
    PERSISTENT,
    "elements",
    "setting",
    "style",
    "camera",
    "lighting",
    "ending",
    "text",
    LORA_TRIGGERS,
)
ORDERS = {
    KEYWORD_WEIGHTED: KEYWORD_ORDER,
    DESCRIPTIVE_FLOW: FLOW_ORDER,
    ACTION_FOCUSED: SHORT_ORDER,
    NATURAL_LANGUAGE: SHORT_ORDER,
}

# Prose lead-ins; description and motion are written as they are.
PROSE_LABELS = {
    "setting": "Setting",
    "style": "Style",
    "lighting": "Lighting",
    "camera": "Camera",
    "ending": "Ending",
    "text": "Text and dialogue",
    "elements": "Key elements",
}

# Among units of equal weight, which goes first when trimming (least important first).
# Motion is listed only for images: a video's motion is trimmed last of all.
TRIM_TIES = (
    "motion",
    "keywords",
    "text",
    "ending",
    "lighting",
    "setting",
    "camera",
    "style",
    "elements",
    PERSISTENT,
    "description",
)

# Trimming tiers: every unit of a lower tier goes before any unit of a higher one.
TIER_GUIDE, TIER_STYLE, TIER_LORA, TIER_VIDEO_MOTION = 0, 1, 2, 3


class PromptModel(Protocol):
    """What ``compose`` reads from a model (``AIModel`` has all of it)."""

    id: str
    kind: str
    max_prompt_length: int
    prompt_guide: dict
    supports_lora: bool
    supports_negative_prompt: bool
    parameter_schema: dict


@dataclass(frozen=True)
class ComposeResult:
    """The request to send: the final prompt, negative prompt and parameters, plus how
    they were made (strategy, adaptation, blocks used and trimmed, LoRAs, length)."""

    prompt: str
    negative_prompt: str
    parameters: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class _Unit:
    """A piece of the prompt that is kept or trimmed as a whole."""

    name: str  # a block name, "persistent_elements[i]", LORA_TRIGGERS or GUIDE_KEYWORDS
    pieces: tuple[str, ...]  # comma fragments (keyword_weighted) or sentences (prose)
    weight: float
    tier: int
    tail: bool = False  # prose: part of the trailing keyword phrase, not a sentence
    element: int | None = None  # the index of a persistent element


def compose(
    document: Any,
    model: PromptModel,
    prompt: str,
    overrides: Mapping[str, Any] | None = None,
) -> ComposeResult:
    """Build the prompt, negative prompt and parameters for ``model`` (rules above).

    Raises ``ValidationError`` for an invalid document or invalid parameters.
    """
    overrides = overrides or {}
    document = validate_document(document)
    adaptation_key = _adaptation_key(document, model)
    adaptation = document.get("model_adaptations", {}).get(adaptation_key, {}) if adaptation_key else {}
    blocks = _merge_blocks(document.get("prompt_blocks", {}), adaptation.get("prompt_blocks", {}))
    guide = model.prompt_guide or {}
    strategy = _strategy(model)
    is_video = model.kind == "video"
    loras = _applicable_loras(document, model)
    prompt = (prompt or "").strip()

    units, motion_source = _build_units(
        strategy=strategy,
        blocks=blocks,
        persistent=document.get("persistent_elements", []),
        trigger_words=_trigger_words(loras),
        is_video=is_video,
    )
    prose = strategy != KEYWORD_WEIGHTED
    if not prose:
        guide_unit = _guide_keywords_unit(guide, _render(prompt, units, prose=False))
        if guide_unit:
            units.append(guide_unit)

    text, kept, trimmed, truncated = _fit(prompt, units, prose=prose, limit=model.max_prompt_length)
    negative, negative_used = _negative_prompt(model, blocks, guide, overrides.get("negative_prompt"))
    parameters, dropped = _parameters(model, document, adaptation, overrides.get("parameters"))

    # The default motion sentence is not a block, even when a disabled motion block exists.
    blocks_used = [
        unit.name for unit in kept if unit.name in blocks and not (unit.name == "motion" and motion_source == "default")
    ]
    if negative_used:
        blocks_used.append("negative")
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "strategy": strategy,
        "adaptations_applied": [adaptation_key] if adaptation_key else [],
        "blocks_used": blocks_used,
        "blocks_trimmed": trimmed,
        "persistent_elements_used": [unit.element for unit in kept if unit.element is not None],
        "loras_applied": loras,
        "motion_source": motion_source,
        "parameters_dropped": dropped,
        "prompt_truncated": truncated,
        "final_length": len(text),
    }
    return ComposeResult(prompt=text, negative_prompt=negative, parameters=parameters, metadata=metadata)


# --- document → units ---------------------------------------------------------------


def _adaptation_key(document: dict, model: PromptModel) -> str | None:
    adaptations = document.get("model_adaptations", {})
    for key in (model.id, model.kind):
        if key in adaptations:
            return key
    return None


def _merge_blocks(blocks: dict, overrides: dict) -> dict[str, dict]:
    """The document's blocks with the adaptation's fields laid over them."""
    merged = {name: dict(block) for name, block in blocks.items()}
    for name, partial in overrides.items():
        base = {"weight": DEFAULT_WEIGHT, "enabled": DEFAULT_ENABLED, **merged.get(name, {})}
        merged[name] = {**base, **partial}
    return merged


def _strategy(model: PromptModel) -> str:
    strategy = (model.prompt_guide or {}).get("strategy")
    if strategy in STRATEGIES:
        return strategy
    return DEFAULT_STRATEGY.get(model.kind, KEYWORD_WEIGHTED)


def _applicable_loras(document: dict, model: PromptModel) -> list[dict]:
    """The LoRAs for this model, sorted by key (so key order in the document is moot)."""
    if not model.supports_lora:
        return []
    loras = []
    for key, lora in sorted(document.get("lora_configs", {}).items()):
        if lora.get("model_id") in (None, model.id):
            loras.append(
                {
                    "key": key,
                    "lora_path": lora["lora_path"],
                    "weight": lora["weight"],
                    "trigger_words": list(lora.get("trigger_words", [])),
                }
            )
    return loras


def _trigger_words(loras: list[dict]) -> list[str]:
    return _dedupe(_clean(word) for lora in loras for word in lora["trigger_words"])


def _build_units(
    *, strategy: str, blocks: dict[str, dict], persistent: list[dict], trigger_words: list[str], is_video: bool
) -> tuple[list[_Unit], str | None]:
    """The units of the prompt in order, and where the motion came from
    ("block", "default" or None)."""
    prose = strategy != KEYWORD_WEIGHTED
    units: list[_Unit] = []
    motion_source = None
    for slot in ORDERS[strategy]:
        if slot == PERSISTENT:
            for index, element in enumerate(persistent):
                description = _fragment(element.get("description", ""))
                if description:
                    weight = element["weight"]
                    piece = _sentence(f"Featuring {description}") if prose else _weighted(description, weight)
                    name = f"{PERSISTENT}[{index}]"
                    units.append(_Unit(name, (piece,), weight, TIER_STYLE, element=index))
        elif slot == LORA_TRIGGERS:
            if trigger_words:
                units.append(_Unit(LORA_TRIGGERS, tuple(trigger_words), DEFAULT_WEIGHT, TIER_LORA, tail=prose))
        elif slot == "motion" and is_video:
            unit = _block_unit("motion", blocks.get("motion"), prose, tier=TIER_VIDEO_MOTION)
            motion_source = "block" if unit else "default"
            if not unit:
                default = _sentence(DEFAULT_MOTION) if prose else _fragment(DEFAULT_MOTION)
                unit = _Unit("motion", (default,), DEFAULT_WEIGHT, TIER_VIDEO_MOTION)
            units.append(unit)
        elif slot == "motion":
            continue  # a still image has no motion, whatever the strategy
        else:
            unit = _block_unit(slot, blocks.get(slot), prose, tier=TIER_STYLE)
            if unit:
                units.append(unit)
                if slot == "motion":
                    motion_source = "block"
    return units, motion_source


def _block_unit(name: str, block: dict | None, prose: bool, *, tier: int) -> _Unit | None:
    """The unit for one prompt block, or None when it is absent, disabled or empty."""
    if not block or not block.get("enabled", DEFAULT_ENABLED):
        return None
    weight = block.get("weight", DEFAULT_WEIGHT)
    if name in ("elements", "keywords"):
        items = _dedupe(_fragment(item) for item in block.get("items", []))
        if not items:
            return None
        if not prose:
            return _Unit(name, tuple(_weighted(item, weight) for item in items), weight, tier)
        if name == "keywords":
            return _Unit(name, tuple(items), weight, tier, tail=True)
        return _Unit(name, (_sentence(f"{PROSE_LABELS[name]}: {', '.join(items)}"),), weight, tier)
    text = _clean(block.get("text", ""))
    if not text:
        return None
    if not prose:
        return _Unit(name, (_weighted(_fragment(text), weight),), weight, tier)
    label = PROSE_LABELS.get(name)
    return _Unit(name, (_sentence(f"{label}: {text}" if label else text),), weight, tier)


def _guide_keywords_unit(guide: dict, existing: str) -> _Unit | None:
    """The guide's keywords that ``existing`` does not already contain (as whole words,
    ignoring case)."""
    keywords = [
        keyword
        for keyword in _dedupe(_fragment(k) for k in guide.get("keywords", []) if isinstance(k, str))
        if not re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", existing, re.IGNORECASE)
    ]
    return _Unit(GUIDE_KEYWORDS, tuple(keywords), DEFAULT_WEIGHT, TIER_GUIDE) if keywords else None


# --- rendering and length -----------------------------------------------------------


def _render(prompt: str, units: list[_Unit], *, prose: bool) -> str:
    if not prose:
        return ", ".join(piece for piece in (prompt, *(p for unit in units for p in unit.pieces)) if piece)
    sentences = [piece for unit in units if not unit.tail for piece in unit.pieces]
    tail = [piece for unit in units if unit.tail for piece in unit.pieces]
    if tail:
        sentences.append(_sentence(", ".join(tail), capitalise=False))
    if not sentences:
        return prompt
    head = [_sentence(prompt, capitalise=False)] if prompt else []
    return " ".join(head + sentences)


def _fit(prompt: str, units: list[_Unit], *, prose: bool, limit: int) -> tuple[str, list[_Unit], list[str], bool]:
    """Drop units (rule 4) until the prompt fits ``limit``; returns the prompt, the kept
    units, the names of the dropped ones in order, and whether the prompt itself was cut."""
    kept = list(units)
    trimmed: list[str] = []
    text = _render(prompt, kept, prose=prose)
    drop_order = sorted(range(len(units)), key=lambda i: _drop_key(units[i], i))
    for index in drop_order:
        if len(text) <= limit:
            break
        kept.remove(units[index])
        trimmed.append(units[index].name)
        text = _render(prompt, kept, prose=prose)
    truncated = len(text) > limit
    if truncated:
        text = _cut(text, limit)
    return text, kept, trimmed, truncated


def _drop_key(unit: _Unit, position: int) -> tuple:
    base = unit.name.split("[", 1)[0]
    tie = TRIM_TIES.index(base) if base in TRIM_TIES else 0
    # Later persistent elements go before earlier ones.
    return unit.tier, unit.weight, tie, -position


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at the last word boundary if any."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if text[limit].isspace():
        return head.rstrip()
    boundary = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return head[:boundary].rstrip() if boundary > 0 else head


# --- negative prompt and parameters -------------------------------------------------


def _negative_prompt(model: PromptModel, blocks: dict[str, dict], guide: dict, requested: Any) -> tuple[str, bool]:
    """The negative prompt (rule 5), and whether the ``negative`` block contributed."""
    if not model.supports_negative_prompt:
        return "", False
    block = blocks.get("negative") or {}
    block_terms = _split_terms(block.get("text", "")) if block.get("enabled", DEFAULT_ENABLED) else []
    guide_terms = [term for term in guide.get("negatives", []) if isinstance(term, str)]
    request_terms = _split_terms(requested) if isinstance(requested, str) else []

    terms: list[str] = []
    keep: dict[str, bool] = {}  # lower-cased term → True when the request asked for it
    for source, is_request in ((block_terms, False), (guide_terms, False), (request_terms, True)):
        for term in filter(None, (_fragment(t) for t in source)):
            if term.lower() not in keep:
                terms.append(term)
            keep[term.lower()] = keep.get(term.lower(), False) or is_request

    while len(", ".join(terms)) > MAX_NEGATIVE_PROMPT_LENGTH:
        droppable = [i for i, term in enumerate(terms) if not keep[term.lower()]]
        if not droppable:
            break
        del terms[droppable[-1]]
    block_used = any(_fragment(term) for term in block_terms)
    return _cut(", ".join(terms), MAX_NEGATIVE_PROMPT_LENGTH), block_used


def _parameters(model: PromptModel, document: dict, adaptation: dict, requested: Any) -> tuple[dict, list[str]]:
    """The validated parameters (rule 6) and the style keys dropped for this model."""
    schema = model.parameter_schema or {}
    style = {**document.get("parameters", {}), **adaptation.get("parameters", {})}
    dropped: list[str] = []
    if schema.get("additionalProperties") is False:
        declared = set(schema.get("properties") or {})
        dropped = sorted(key for key in style if key not in declared)
        style = {key: value for key, value in style.items() if key in declared}
    if requested is None:
        requested = {}
    if not isinstance(requested, Mapping):
        raise ValidationError({"parameters": "Parameters must be a JSON object."})
    return validate_parameters(schema, {**style, **requested}), dropped


# --- text helpers -------------------------------------------------------------------


def _clean(text: str) -> str:
    """Whitespace collapsed to single spaces."""
    return " ".join(text.split())


def _fragment(text: str) -> str:
    """A comma-list fragment: clean, without trailing separators or full stop."""
    return _clean(text).rstrip(",;. ")


def _sentence(text: str, *, capitalise: bool = True) -> str:
    """``text`` as a sentence: clean, ending with terminal punctuation, optionally with
    a capital first letter."""
    text = _clean(text).rstrip(",;: ")
    if not text:
        return ""
    if capitalise:
        text = text[0].upper() + text[1:]
    if text[-1] not in ".!?…\"'”":
        text += "."
    return text


def _format_weight(weight: float) -> str:
    """1.5 → "1.5", 0.8 → "0.8", 1.25 → "1.25", 2 → "2" (at most two decimals)."""
    return f"{weight:.2f}".rstrip("0").rstrip(".")


def _weighted(text: str, weight: float) -> str:
    formatted = _format_weight(weight)
    return text if formatted == "1" else f"({text}:{formatted})"


def _split_terms(text: str) -> list[str]:
    return text.split(",") if text else []


def _dedupe(values: Any) -> list[str]:
    """Non-empty values, first occurrence kept, compared ignoring case."""
    seen: set[str] = set()
    result = []
    for value in values:
        if value and value.lower() not in seen:
            seen.add(value.lower())
            result.append(value)
    return result
