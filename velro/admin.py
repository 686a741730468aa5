from django.core.paginator import Paginator
from django.utils.functional import cached_property


class ReadOnlyAdminMixin:
    """A model admin (or inline) staff can read but never add to, change or delete from:
    for rows that only triggers and services write (profiles, the ledger, Stripe's
    events)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInlineMixin(ReadOnlyAdminMixin):
    """An inline of rows staff only read."""

    can_delete = False
    extra = 0


class CappedCountPaginator(Paginator):
    """A paginator for the big append-mostly tables (ledger, generations).

    ``COUNT(*)`` over millions of rows is a sequential scan on every page view. This one
    counts at most ``cap`` rows (``SELECT COUNT(*) FROM (… LIMIT cap)``), so a page costs
    the same at any table size; past the cap, staff narrow the list with the filters and
    the search instead of paging. The price: the total shown stops at the cap.
    """

    cap = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.cap].count()
