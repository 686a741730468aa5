"""Rows of our own SQL as model instances, the way ``Model.objects.raw()`` makes them,
for the statements every API request runs (no DRF or app imports here: the JWT
authentication class uses it while DRF loads its settings)."""

import functools

from django.db import connection
from django.db.models.sql import Query


def fetch_instance(model, query: str, params):
    """The first row of ``query`` as a ``model`` instance (None if there is none), made
    as ``model.objects.raw()`` makes it: the columns named like the model's fields fill
    it through their converters, any other column becomes an attribute.

    RawQuerySet works out that mapping and the converters on every call (~0.1 ms, make
    bench); here they are worked out once per model and column list. Every column of the
    model must be selected (``SELECT *``, or all of them)."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        row = cursor.fetchone()
        if row is None:
            return None
        columns = tuple(column.name for column in cursor.description)
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
