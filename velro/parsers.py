"""Parsers that refuse what PostgreSQL cannot store or Python cannot walk.

Applied to every API request body (settings.REST_FRAMEWORK DEFAULT_PARSER_CLASSES):
- NUL characters (PostgreSQL text and jsonb cannot hold them) and lone UTF-16
  surrogates (not encodable as UTF-8) anywhere in the body are a 400 parse_error,
  instead of a database error or a renderer crash later;
- JSON nested deeper than MAX_DEPTH is a 400 instead of a RecursionError.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 64


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "Null characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Unpaired surrogate characters are not allowed."
    return None


def check_clean(data, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ParseError if any key or string in ``data`` is unusable, or it nests too deep."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise ParseError(f"JSON nested deeper than {max_depth} levels is not accepted.")
        if isinstance(value, str):
            problem = _bad_text(value)
            if problem:
                raise ParseError(problem)
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _bad_text(key)
                if problem:
                    raise ParseError(problem)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels is not accepted.") from exc
        check_clean(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        for key, values in result.data.lists():
            check_clean([key, *values])
        for upload in result.files.values():
            check_clean(upload.name)
        return result


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        for key, values in data.lists():
            check_clean([key, *values])
        return data
