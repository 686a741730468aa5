import functools
import select

import psycopg
from django.db.backends.base.introspection import TableInfo
from django.db.backends.postgresql import base, introspection
from psycopg import pq
from psycopg.adapt import AdaptersMap, Loader
from psycopg.postgres import types as pg_types

TIMESTAMPTZ_OID = pg_types["timestamptz"].oid
# psycopg's own text loader of timestamptz: its C implementation when psycopg's binary
# package is installed (requirements.txt), else the pure-Python one.
PSYCOPG_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT)


@functools.lru_cache
def _timestamptz_loader(tz):
    """Django's timestamptz loader — psycopg's value with its time zone replaced by the
    connection's (``django.db.backends.postgresql.psycopg_any.BaseTzLoader``) — on top of
    psycopg's own loader.

    Django's derives from psycopg's pure-Python class (the C one cannot be subclassed),
    so with psycopg's binary package every timestamp of every row was still parsed by a
    regular expression in Python: ~0.4 ms of a page of 50 generations (make bench;
    Django ticket #36960). This one delegates the parsing and keeps Django's time zone
    rule and its ``timezone`` attribute (which Django's create_cursor compares)."""

    class TimestamptzLoader(Loader):
        timezone = tz

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._load = PSYCOPG_TIMESTAMPTZ_LOADER(oid, context).load

        def load(self, data):
            return self._load(data).replace(tzinfo=self.timezone)

    return TimestamptzLoader


@functools.lru_cache
def _adapters(template: AdaptersMap) -> AdaptersMap:
    """Django's adapters of a connection (one shared map per time zone, like Django's)
    with the timestamptz loader above, for the time zone of Django's."""
    tz = template.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT).timezone
    adapters = AdaptersMap(template)
    adapters.register_loader(TIMESTAMPTZ_OID, _timestamptz_loader(tz))
    return adapters


SCHEMAS = ("public", "auth")


class DatabaseIntrospection(introspection.DatabaseIntrospection):
    def get_table_list(self, cursor):
        tables = super().get_table_list(cursor)
        cursor.execute(
            """
            SELECT n.nspname, c.relname
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
            """,
            [list(SCHEMAS)],
        )
        return tables + [TableInfo(f'{schema}"."{name}', "t") for schema, name in cursor.fetchall()]


class DatabaseWrapper(base.DatabaseWrapper):
    introspection_class = DatabaseIntrospection

    def get_connection_params(self):
        params = super().get_connection_params()
        template = params.get("context")
        if template is not None:
            params["context"] = _adapters(template)
        return params

    def is_usable(self):
        """The health check of a persistent connection (CONN_HEALTH_CHECKS), without a
        round trip when nothing happened.

        Django sends ``SELECT 1`` before every request's first query: a round trip per
        request (~6% of a list page's time under load, make bench). An idle connection
        whose server restarted or closed it has something to read (the termination
        notice, then end of file): the socket is polled without waiting, and only then
        is the real ``SELECT 1`` asked. tests/faults/test_database_restart.py restarts the
        server under an idle app and checks the first request after it succeeds.
        """
        conn = self.connection
        if conn is None or conn.closed:
            return False
        try:
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                return super().is_usable()
            readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return False
        if readable:
            return super().is_usable()
        return conn.pgconn.status == pq.ConnStatus.OK
