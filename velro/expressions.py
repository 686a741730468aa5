"""Database expressions shared by models (their indexes) and the queries that must
match those indexes exactly."""

from django.contrib.postgres.search import SearchVector
from django.db.models import DateTimeField, Func


class UTCTimestamp(Func):
    """``timezone('UTC', <timestamptz>)``: the same instant as a timestamp without time
    zone, so it sorts exactly as the column does.

    The admin's changelists of the big tables list newest first by this expression, on
    an index of their own (``*_admin_order_idx``). An index on the bare column would do
    the same, but the planner could then take it for the API's per-person pages (``WHERE
    user_id = … ORDER BY created_at DESC, id DESC``) on a table where one person owns
    much of it: it did, with a b-tree on created_at (make bench's page_plans_use_index).
    An index on an expression serves only queries that order by that expression, so the
    API's plans cannot change, whatever the data.
    """

    # 'UTC' written into the SQL, not a parameter: a prepared statement's generic plan
    # (server-side binding) must still see the very expression of the index.
    template = "timezone('UTC', %(expressions)s)"
    arity = 1
    output_field = DateTimeField()


def words(*fields: str) -> SearchVector:
    """The words of ``fields`` (``to_tsvector('simple', …)``: no stemming, no stop
    words), as the admin's search matches them; GIN indexes are built on exactly this
    expression, or PostgreSQL would not use them."""
    return SearchVector(*fields, config="simple")
