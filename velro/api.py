"""Base classes every API view inherits, so none can run as the database owner.

``tests/velro/test_api_views_use_rls.py`` walks the URL patterns and fails on any API
view that does not inherit :class:`velro.rls.RLSViewMixin`.
"""

import datetime

from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ParseError
from rest_framework.views import APIView

from velro.parsers import check_clean
from velro.rls import RLSViewMixin


class BaseAPIView(RLSViewMixin, APIView):
    """An API view for a command or a resource that is not a model."""


class OwnedQuerysetMixin:
    """Scope every queryset to the caller, once, failing closed.

    ``owner_field`` names the field holding the owner; set it to None only for
    resources everyone may read (the model catalog). RLS enforces the same underneath;
    this states the intent and gives the planner the owner filter.
    """

    owner_field: str | None = "user"

    def get_queryset(self):
        return self.owned(super().get_queryset())

    def owned(self, queryset):
        """``queryset`` scoped to the caller (for a view that reads through another
        queryset than ``queryset``, e.g. rows as dicts)."""
        if self.owner_field is None:
            return queryset
        return queryset.filter(**{self.owner_field: self.request.user})


class BaseGenericViewSet(RLSViewMixin, OwnedQuerysetMixin, viewsets.GenericViewSet):
    """A viewset; subclasses add the mixins they serve."""


class BaseReadOnlyModelViewSet(RLSViewMixin, OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class BaseModelViewSet(
    RLSViewMixin,
    OwnedQuerysetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    pass


class StrictInputMixin:
    """Reject input keys the serializer would silently ignore.

    DRF drops unknown and read-only keys without a word; a client that sends
    ``credits_balance`` would believe it had changed it. Here it gets a 400 naming the
    field, and nothing is saved. ``server_owned_fields`` lists fields of the resource
    that an input serializer does not declare but that deserve "read-only" rather than
    "unknown".
    """

    server_owned_fields: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {}
            for key in data.keys():
                if key in writable:
                    problem = _type_problem(self.fields[key], data[key])
                    if problem:
                        errors[key] = [problem]
                    continue
                if key in self.fields or key in self.server_owned_fields:
                    errors[key] = ["This field is read-only."]
                else:
                    errors[key] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _type_problem(field, value) -> str | None:
    """DRF's CharField turns 12 into "12"; a client that sends a number for a text
    field has a bug we should tell it about."""
    if value is None:
        return None
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "Not a valid string."
    if (
        isinstance(field, serializers.ListField)
        and isinstance(field.child, serializers.CharField)
        and isinstance(value, list)
        and not all(isinstance(item, str) for item in value)
    ):
        return "Every item must be a string."
    return None


class SharedQuerysetMixin:
    """For relational fields: every copy of the field shares its declared queryset.

    DRF deep-copies a serializer's declared fields for each instance, and deep-copying a
    queryset copies its whole query; on the fields of POST generations that was a few %
    of the request (make bench). A declared queryset is never evaluated or changed in
    place — RelatedField.get_queryset() works on ``.all()``, a clone — so sharing it is
    what DRF's own ``queryset`` class attribute does."""

    def __deepcopy__(self, memo):
        queryset = self._kwargs.get("queryset")
        if queryset is not None:
            memo[id(queryset)] = queryset
        return super().__deepcopy__(memo)


class CleanJSONField(serializers.JSONField):
    """A JSON field that refuses what the database cannot store (NUL, lone surrogates)
    and absurd nesting — also when the JSON arrives as a form field (multipart)."""

    def to_internal_value(self, data):
        try:
            value = super().to_internal_value(data)
        except RecursionError as exc:
            raise serializers.ValidationError("Nested too deeply.") from exc
        try:
            check_clean(value)
        except ParseError as exc:
            raise serializers.ValidationError(str(exc.detail)) from exc
        return value


class DirectRowMixin:
    """For serializers that build their rows directly (``to_representation``): the
    current time zone, looked up once per serializer — a page's rows share one child
    serializer — instead of once per row (a context-local lookup, ~3% of a page of 50
    generations; make bench)."""

    @cached_property
    def current_timezone(self):
        current = timezone.get_current_timezone()
        # UTC as the database connection's rows carry it (datetime.UTC, not
        # ZoneInfo("UTC")): the same offset, so the same text, and iso_datetime then
        # skips converting every value of the page.
        return datetime.UTC if getattr(current, "key", None) == "UTC" else current


def iso_datetime(value, tz):
    """DRF's DateTimeField output, for serializers that build rows directly: ISO 8601 in
    the current time zone ``tz``, UTC written as "Z"; None stays None."""
    if value is None:
        return None
    # Rows arrive in Django's time zone already (velro.db_backend): no conversion then.
    value = (value if value.tzinfo is tz else value.astimezone(tz)).isoformat()
    return value[:-6] + "Z" if value.endswith("+00:00") else value
