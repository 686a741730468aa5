import select

import psycopg
from django.db.backends.base.introspection import TableInfo
from django.db.backends.postgresql import base, introspection
from psycopg import pq

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
