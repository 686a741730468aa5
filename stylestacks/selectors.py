import functools
from collections import namedtuple

from django.db import connection

from stylestacks.models import StackContributor, StackInvite, StyleStack
from velro.db import translating_db_errors

# What a page shows: every column but the document and the search vector (a list leaves
# the document out; make bench measured loading them as most of explore's Python time).
_LIST_COLUMNS = ", ".join(
    f's."{field.column}"' for field in StyleStack._meta.concrete_fields if field.name not in ("style", "search_vector")
)
# One round trip: the ranked ids from the search function, joined to their rows (under
# the caller's RLS, like any read) in the function's order.
_EXPLORE_PAGE = f"""
SELECT {_LIST_COLUMNS}, e.total AS explore_total
FROM public.style_stacks_explore(%s, %s, %s, %s, %s, %s) WITH ORDINALITY AS e(id, total, position)
JOIN public.style_stacks AS s ON s.id = e.id
ORDER BY e.position
"""


def stylestacks_explore(
    *, q: str | None, tags: list[str] | None, category: str | None, sort: str, limit: int, offset: int
) -> tuple[list[tuple], int]:
    """A page of public stacks and the total that match, best first (featured, then by
    ``sort``). The search runs in public.style_stacks_explore() so that it can use its
    GIN indexes under RLS (see stylestacks/migrations/0005_explore.py).

    The rows are named tuples with StyleStack's attribute names (``parent_id`` …), which
    is all StyleStackListSerializer reads: no model instance per row (make bench)."""
    params = [q or None, tags or None, category or None, sort, limit, offset]
    with translating_db_errors(), connection.cursor() as cursor:
        cursor.execute(_EXPLORE_PAGE, params)
        row = _row_class(tuple(column.name for column in cursor.description))
        stacks = [row._make(values) for values in cursor.fetchall()]
    return stacks, (stacks[0].explore_total if stacks else 0)


@functools.lru_cache(maxsize=8)
def _row_class(columns: tuple[str, ...]):
    """The named tuple of explore's rows (one class per column list, not per request)."""
    return namedtuple("ExploredStack", columns)


def stack_people(*, stack: StyleStack, include_pending: bool) -> list[dict]:
    """The stack's contributors and, with ``include_pending`` (its owner asking), the
    invites still waiting for their address to sign up; oldest first. Rows in
    StackPersonSerializer's shape. RLS shows pending invites to the owner alone anyway:
    the flag saves the query for everyone else."""
    columns = ("email", "role", "invited_by_id", "created_at")
    people = [
        _person(user=user, invite_id=None, row=row)
        for user, *row in StackContributor.objects.filter(stack=stack).values_list("user_id", *columns)
    ]
    if include_pending:
        people += [
            _person(user=None, invite_id=pk, row=row)
            for pk, *row in StackInvite.objects.filter(stack=stack).values_list("id", *columns)
        ]
    return sorted(people, key=lambda person: (person["created_at"], person["pending"], person["email"]))


def _person(*, user, invite_id, row) -> dict:
    email, role, invited_by, created_at = row
    return {
        "user": user,
        "email": email,
        "role": role,
        "invited_by": invited_by,
        "created_at": created_at,
        "pending": invite_id is not None,
        "invite_id": invite_id,
    }
