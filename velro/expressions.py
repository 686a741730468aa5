"""Database expressions shared by models (their indexes) and the queries that must
match those indexes exactly."""

from django.contrib.postgres.search import SearchVector
from django.db.models import DateTimeField, Func, Value


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

    function = "timezone"
    output_field = DateTimeField()

    def __init__(self, expression, **extra):
        super().__init__(Value("UTC"), expression, **extra)


def words(*fields: str) -> SearchVector:
    """The words of ``fields`` (``to_tsvector('simple', …)``: no stemming, no stop
    words), as the admin's search matches them; GIN indexes are built on exactly this
    expression, or PostgreSQL would not use them."""
    return SearchVector(*fields, config="simple")
