from stylestacks.models import StyleStack
from velro.db import call_table_function


def stylestacks_explore(
    *, q: str | None, tags: list[str] | None, category: str | None, sort: str, limit: int, offset: int
) -> tuple[list[StyleStack], int]:
    """A page of public stacks and the total that match, best first (featured, then by
    ``sort``). The search runs in public.style_stacks_explore() so that it can use its
    GIN indexes under RLS (see stylestacks/migrations/0005_explore.py)."""
    rows = call_table_function("style_stacks_explore", q or None, tags or None, category or None, sort, limit, offset)
    if not rows:
        return [], 0
    order = {stack_id: position for position, (stack_id, _) in enumerate(rows)}
    # The page shows no document and no search vector: not loaded (make bench, explore p95).
    found = StyleStack.objects.filter(pk__in=order).defer("style", "search_vector")
    stacks = sorted(found, key=lambda stack: order[stack.pk])
    return stacks, rows[0][1]
