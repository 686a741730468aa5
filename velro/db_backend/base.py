from django.db.backends.base.introspection import TableInfo
from django.db.backends.postgresql import base, introspection

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
