"""Rows of our own SQL as model instances, the way ``Model.objects.raw()`` makes them,
for the statements every API request runs (no DRF or app imports here: the JWT
authentication class uses it while DRF loads its settings)."""

import functools
import json

from django.db import connection
from django.db.models import JSONField
from django.db.models.expressions import Col
from django.db.models.query import ValuesIterable
from django.db.models.sql import Query
from django.db.models.sql.constants import MULTI


def fetch_instance(model, query: str, params, columns: tuple[str, ...] | None = None):
    """The first row of ``query`` as a ``model`` instance (None if there is none), made
    as ``model.objects.raw()`` makes it: the columns named like the model's fields fill
    it through their converters, any other column becomes an attribute.

    RawQuerySet works out that mapping and the converters on every call (~0.1 ms, make
    bench); here they are worked out once per model and column list. Every column of the
    model must be selected (``SELECT *``, or all of them). ``columns``: the statement's
    column names in order, when the caller knows them (the statement names them all);
    otherwise they are read from the cursor's description (psycopg builds it anew on
    every read: ~40 µs for a user row)."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        row = cursor.fetchone()
        if row is None:
            return None
        if columns is None:
            columns = tuple(column.name for column in cursor.description)
        elif len(columns) != len(row):
            raise ValueError(f"{model.__name__} rows: {len(row)} columns, {len(columns)} names given")
    positions, converters, extra = _row_plan(model, columns, connection.alias)
    values = list(row)
    for i, (functions, expression) in converters.items():
        for convert in functions:
            values[i] = convert(values[i], expression, connection)
    instance = model.from_db(connection.alias, None, [values[i] for i in positions])
    for name, i in extra:
        setattr(instance, name, values[i])
    return instance


@functools.lru_cache(maxsize=64)
def _row_plan(model, columns: tuple[str, ...], alias: str):
    """For rows with ``columns``: where each concrete field of ``model`` is, Django's
    converters by position (as RawQuerySet gets them from the compiler), and the other
    columns."""
    where = {column: i for i, column in enumerate(columns)}
    fields = model._meta.concrete_fields
    missing = [field.column for field in fields if field.column not in where]
    if missing:
        raise ValueError(f"{model.__name__} rows need every column; missing: {', '.join(missing)}")
    expressions = [None] * len(columns)
    for field in fields:
        expressions[where[field.column]] = field.get_col(model._meta.db_table)
    compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, alias)
    converters = compiler.get_converters(expressions)
    known = {field.column for field in fields}
    extra = tuple((column, i) for column, i in where.items() if column not in known)
    return tuple(where[field.column] for field in fields), converters, extra


class ValueRows(ValuesIterable):
    """``values()`` rows (dicts) made with less per-row work than Django's ValuesIterable:
    a list page of generations is 51 rows of 21 columns, three of them JSON.

    Django applies every column's converters through a generic loop (a list copy of the
    row and a call per converter and value), and works the converters out again for every
    query. Here they are worked out once per model and column list, a row becomes its
    dict with ``zip``, and the JSON columns of a ``JSONField`` without a custom decoder are
    decoded with ``json.loads`` exactly as ``JSONField.from_db_value`` does (None stays
    None, text that is not JSON is returned as it is). Any other converter runs as Django
    runs it; queries with extra selects or annotations take Django's own path."""

    def __iter__(self):
        queryset = self.queryset
        query = queryset.query
        if query.extra_select or query.annotation_select:
            yield from super().__iter__()
            return
        compiler = query.get_compiler(queryset.db)
        names = tuple(query.selected or query.values_select)
        results = compiler.execute_sql(MULTI, chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size)
        json_names, others = _values_plan(query.model, names, compiler)
        connection = compiler.connection
        loads = json.loads
        for rows in results:
            for row in rows:
                # (A row may carry more columns than names, as for ValuesIterable.)
                values = dict(zip(names, row, strict=False))
                for name in json_names:
                    value = values[name]
                    if value is not None:
                        try:
                            values[name] = loads(value)
                        except json.JSONDecodeError:
                            pass
                for name, functions, expression in others:
                    value = values[name]
                    for convert in functions:
                        value = convert(value, expression, connection)
                    values[name] = value
                yield values


def _values_plan(model, names: tuple[str, ...], compiler):
    """The converters of a values() query's columns (the query has just been compiled):
    the names of the JSON columns decoded directly, and (name, converters, expression)
    for every other column that has converters. Kept per model, columns and database: the
    converters depend on the fields, not on the filters or the order."""
    key = (model, names, compiler.connection.alias)
    plan = _VALUES_PLANS.get(key)
    if plan is None:
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        json_names, others = [], []
        for i, (functions, expression) in compiler.get_converters(fields).items():
            field = getattr(expression, "target", None)
            if (
                isinstance(expression, Col)
                and isinstance(field, JSONField)
                and field.decoder is None
                and functions == [field.from_db_value]
            ):
                json_names.append(names[i])
            else:
                others.append((names[i], functions, expression))
        plan = _VALUES_PLANS[key] = (tuple(json_names), tuple(others))
    return plan


_VALUES_PLANS: dict = {}
