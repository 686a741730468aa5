"""Shared pieces of the admin: read-only mixins, and what every changelist of a table
that grows without bound is built from (README, "The admin at a million rows"): a
total the planner estimates, search by the shape of the term on indexes, and related
rows listed newest few first."""

import operator
import re
import uuid
from functools import reduce
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchQuery
from django.core.paginator import Paginator
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from procrastinate.contrib.django import admin as procrastinate_admin
from procrastinate.contrib.django.models import ProcrastinateEvent, ProcrastinateJob

from velro.db import planner_row_estimate
from velro.expressions import UTCTimestamp

# A change page lists this many related rows of each kind, newest first, and links to
# the filtered changelist for the rest.
RECENT = 10

# An email prefix matching more people than this is cut to this many (with a warning):
# their ids go into the query as a list, so the owner indexes are used.
MAX_OWNERS = 100


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


# --- the total ----------------------------------------------------------------------


class EstimatedCount(int):
    """A total that is the planner's estimate. It is an int for the page arithmetic, and
    prints as "about 1,000,000" everywhere the admin shows it (beside the page links,
    "N results" by the search box, "Select all N")."""

    def __str__(self):
        return f"about {int(self):,}"


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a big table.

    The planner's estimate of the filtered list comes first (``EXPLAIN``, nothing read).
    Above ``exact_up_to`` it is the total, shown as "about …"; at or below, the rows are
    counted (``SELECT COUNT(*) FROM (… LIMIT n+1)``: at most n+1 rows read whatever the
    table's size), and an estimate that was too low is corrected upwards. Counting first
    would read n+1 matching rows of every filter with more matches than that (a status
    held by 50,000 of a million generations: ~200,000 rows walked on every page view).
    The page links follow the total: when the estimate is high, the last pages are empty.
    """

    exact_up_to = 10_000

    @cached_property
    def count(self):
        estimate = planner_row_estimate(self.object_list)
        if estimate > self.exact_up_to:
            return EstimatedCount(estimate)
        # Unordered: any n+1 rows will do, so the planner takes the cheapest way to them.
        counted = self.object_list.order_by()[: self.exact_up_to + 1].count()
        if counted <= self.exact_up_to:
            return counted
        return EstimatedCount(max(estimate, counted))


# --- search by the shape of the term ----------------------------------------------------


def search_shape(term: str) -> str:
    """The shape of a search term: "email" (it has an @: an address or its beginning),
    "id" (a UUID) or "words"."""
    if "@" in term:
        return "email"
    try:
        uuid.UUID(term)
    except ValueError:
        return "words"
    return "id"


def word_prefixes(term: str, config: str = "simple") -> SearchQuery | None:
    """Every word of ``term`` as a prefix (``'red':* & 'fo':*``), or None if it has no
    word. Only word characters reach the tsquery, so nothing the staff member types is
    a tsquery syntax error."""
    found = re.findall(r"\w+", term)
    if not found:
        return None
    return SearchQuery(" & ".join(f"'{word}':*" for word in found), search_type="raw", config=config)


def owner_ids(request, model_admin, term: str) -> list:
    """The ids of the people whose email starts with ``term`` (case-insensitive; on
    users_email_upper_prefix_idx), at most MAX_OWNERS of them, with a warning when
    there are more."""
    found = list(
        get_user_model().objects.filter(email__istartswith=term).values_list("pk", flat=True)[: MAX_OWNERS + 1]
    )
    if len(found) > MAX_OWNERS:
        model_admin.message_user(
            request,
            f"More than {MAX_OWNERS} people have an email starting with {term!r}: only {MAX_OWNERS} of them "
            "are searched. Type more of the address.",
            messages.WARNING,
        )
    return found[:MAX_OWNERS]


class BigTableAdminMixin:
    """What a changelist of a table that grows without bound needs.

    - The estimated total (EstimatedCountPaginator), never a full count.
    - Search by the shape of the term, each shape on an index. An OR across tables, as
      Django's default search writes it (``prompt ILIKE … OR users.email ILIKE …``),
      can use none, so the term picks one:
      an ``@`` → the owners whose email starts with it (``owner_field``), their ids in
      the query; a UUID → an exact match on ``id_fields``; anything else →
      ``search_other``: every word as a prefix in ``words_vector`` (a GIN index on that
      very expression), or, on a table without text, the beginning of an email.
    - Newest first by ``UTCTimestamp(created_at)`` (the ``ordering`` of the subclass, an
      index of its own), or by the owner's index (``owner_ordering``) when the list is
      narrowed to owners: by the link from a person's page or an email search.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    owner_field = "user"
    id_fields = ("pk",)
    words_vector = None  # a SearchVector (velro.expressions.words) with a GIN index
    words_config = "simple"
    owner_ordering = None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        shape = search_shape(term)
        if shape == "id":
            match = uuid.UUID(term)
            return queryset.filter(reduce(operator.or_, (Q(**{field: match}) for field in self.id_fields))), False
        if shape == "email" and self.owner_field:
            return queryset.filter(**{f"{self.owner_field}__in": owner_ids(request, self, term)}), False
        return self.search_other(request, queryset, term), False

    def search_other(self, request, queryset, term):
        """The words of ``term`` as prefixes in ``words_vector`` (an expression, or the
        name of a tsvector column); on a table without text, the beginning of an owner's
        email."""
        if self.words_vector is None:
            if self.owner_field:
                return queryset.filter(**{f"{self.owner_field}__in": owner_ids(request, self, term)})
            return queryset.none()
        query = word_prefixes(term, self.words_config)
        if query is None:
            return queryset.none()
        if isinstance(self.words_vector, str):
            return queryset.filter(**{self.words_vector: query})
        return queryset.annotate(search_words=self.words_vector).filter(search_words=query)

    def get_ordering(self, request):
        if self.owner_ordering and self.narrowed_to_owners(request):
            return self.owner_ordering
        return super().get_ordering(request)

    def narrowed_to_owners(self, request) -> bool:
        owner = self.owner_field
        if not owner:
            return False
        if {f"{owner}__id__exact", f"{owner}__exact", f"{owner}_id__exact"} & request.GET.keys():
            return True
        term = request.GET.get(SEARCH_VAR, "").strip()
        shape = search_shape(term) if term else None
        return shape == "email" or (shape == "words" and self.words_vector is None)

    @admin.display(description="created at", ordering=UTCTimestamp("created_at"))
    def created(self, obj):
        return obj.created_at


# --- related rows on a change page ------------------------------------------------------


class RecentRowsFormSet(BaseInlineFormSet):
    """An inline formset over the newest ``RECENT`` rows only (the inline's ordering),
    with ``has_more`` and ``all_url`` (the changelist of the rest, filtered to the
    parent) for the template. One ``LIMIT RECENT + 1`` query, whatever the parent has.

    The slice is taken here, after the formset has filtered by the parent: a sliced
    queryset can no longer be filtered."""

    recent = RECENT

    def get_queryset(self):
        if not hasattr(self, "_recent_rows"):
            rows = list(super().get_queryset()[: self.recent + 1])
            self.has_more = len(rows) > self.recent
            self._recent_rows = rows[: self.recent]
        return self._recent_rows

    @cached_property
    def all_url(self) -> str | None:
        opts = self.model._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:  # not in the admin: the page says how many are not shown
            return None
        return f"{url}?{urlencode({f'{self.fk.name}__id__exact': self.instance.pk})}"


class RecentRowsInlineMixin:
    """An inline listing the newest RECENT related rows, then a link to the rest."""

    formset = RecentRowsFormSet
    template = "admin/edit_inline/tabular_recent.html"


# --- procrastinate's jobs ---------------------------------------------------------------


class ProcrastinateEventInline(RecentRowsInlineMixin, ReadOnlyInlineMixin, admin.TabularInline):
    """A job's newest events."""

    model = ProcrastinateEvent
    fields = ("type", "at")
    readonly_fields = fields
    ordering = ("-at", "-id")


admin.site.unregister(ProcrastinateJob)


@admin.register(ProcrastinateJob)
class ProcrastinateJobAdmin(BigTableAdminMixin, procrastinate_admin.ProcrastinateJobAdmin):
    """procrastinate's jobs admin, for a table that keeps every job it ever ran: the
    estimated total, no sidebar filter that lists the table's distinct values (queue
    and task names, locks, priorities: each a scan of every job on every page view), and
    a job's newest events only."""

    owner_field = ""
    list_filter = ["status", "scheduled_at"]
    inlines = [ProcrastinateEventInline]
