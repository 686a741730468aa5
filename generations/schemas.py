"""Validation of generation parameters against a model's JSON Schema, with messages
that name the parameter at fault."""

from typing import Any

from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def check_parameter_schema(schema: Any) -> None:
    """Raise ValidationError unless ``schema`` is a usable JSON Schema for parameters."""
    if not isinstance(schema, dict):
        raise ValidationError("The parameter schema must be a JSON object.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError(f"Invalid JSON Schema at {path}: {exc.message}") from exc
    if schema and schema.get("type") != "object":
        raise ValidationError('The parameter schema must describe an object ("type": "object").')
    for name, spec in (schema.get("properties") or {}).items():
        if isinstance(spec, dict) and "default" in spec and default_within_limits(spec) != spec["default"]:
            raise ValidationError(f"The default of {name!r} ({spec['default']!r}) is outside its own limits.")


def default_within_limits(spec: dict) -> Any:
    """``spec``'s default if it satisfies ``spec``; else the nearest value that does
    (bounds for numbers, the first value of an enum). A default the API fills in must
    pass the database's check of the same schema (generations.0008)."""
    default = spec["default"]
    if not list(Draft202012Validator(spec).iter_errors(default)):
        return default
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return spec["enum"][0]
    if isinstance(default, int | float) and not isinstance(default, bool):
        low, high = spec.get("minimum"), spec.get("maximum")
        if low is not None and default < low:
            return low
        if high is not None and default > high:
            return high
    return default


def validate_parameters(schema: dict, parameters: Any) -> dict:
    """Return the parameters with the schema's defaults filled in, or raise
    ``ValidationError({"parameters": [...]})`` naming each offending path."""
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters must be a JSON object."})
    validator = Draft202012Validator(schema or {"type": "object"})
    errors = sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))
    if errors:
        messages = []
        for error in errors[:10]:
            where = ".".join(str(p) for p in error.path)
            messages.append(f"{where}: {error.message}" if where else error.message)
        raise ValidationError({"parameters": messages})
    filled = dict(parameters)
    for name, spec in (schema.get("properties") or {}).items():
        if name not in filled and isinstance(spec, dict) and "default" in spec:
            filled[name] = spec["default"]
    return filled
