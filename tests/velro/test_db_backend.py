"""velro.db_backend loads timestamptz values with psycopg's C loader, giving exactly what
Django's own loader gives (make bench: Django's parses each one in Python)."""

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader

from velro.db_backend.base import PSYCOPG_TIMESTAMPTZ_LOADER, TIMESTAMPTZ_OID

VALUES = [
    "2026-11-25 03:04:25.123456+00",
    "2026-11-25 03:04:25+00",
    "1999-12-31 23:59:59.5+00",
    "2024-02-29 12:00:00-05:30",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
]


def load(cursor, value):
    cursor.execute("SELECT %s::timestamptz", [value])
    return cursor.fetchone()[0]


def test_the_connection_loads_timestamps_with_psycopgs_c_loader(db):
    assert PSYCOPG_TIMESTAMPTZ_LOADER.__module__.startswith("psycopg_binary")  # requirements: psycopg[binary]
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, psycopg.pq.Format.TEXT)
        assert loader.timezone == connection.timezone  # Django's create_cursor compares it
        assert type(loader(TIMESTAMPTZ_OID, cursor.cursor)._load.__self__) is PSYCOPG_TIMESTAMPTZ_LOADER


@pytest.mark.parametrize("value", VALUES)
def test_a_timestamp_is_what_djangos_own_loader_makes_of_it(db, value):
    with connection.cursor() as ours, connection.cursor() as djangos:
        register_tzloader(connection.timezone, djangos.cursor)  # Django's pure-Python loader
        mine, theirs = load(ours, value), load(djangos, value)
    assert mine == theirs
    assert mine.tzinfo is theirs.tzinfo is connection.timezone
    assert mine.isoformat() == theirs.isoformat()


def test_an_unrepresentable_timestamp_fails_the_same_way(db):
    for value in ("infinity", "0044-03-15 12:00:00+00 BC"):
        with connection.cursor() as ours, connection.cursor() as djangos:
            register_tzloader(connection.timezone, djangos.cursor)
            with pytest.raises(psycopg.DataError):
                load(djangos.cursor, value)
            with pytest.raises(psycopg.DataError):
                load(ours.cursor, value)
