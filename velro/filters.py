import datetime

import django_filters


class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """``true`` or ``false``; anything else is a 400 naming the parameter (django-filter's
    BooleanFilter silently ignores values it cannot read)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 moment, compared in UTC: Python accepts offsets up to ±23:59,
    PostgreSQL only ±15:59, so a legal but unusual offset must not reach the database."""

    def filter(self, qs, value):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return super().filter(qs, value)
