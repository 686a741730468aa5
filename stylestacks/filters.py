import django_filters
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F

from stylestacks.models import STACK_CATEGORIES, Category, StylePreset, StyleStack

SORTS = {
    "usage": ("-is_featured", "-usage_count", "-created_at", "-id"),
    "forks": ("-is_featured", "-fork_count", "-created_at", "-id"),
    "newest": ("-is_featured", "-created_at", "-id"),
}


class TagsFilter(django_filters.CharFilter):
    """``?tags=noir,rain``: stacks that carry every one of these tags (GIN on tags)."""

    def filter(self, qs, value):
        tags = [t.strip().lower() for t in (value or "").split(",") if t.strip()]
        return qs.filter(tags__contains=tags) if tags else qs


class ExploreFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", max_length=200, label="Search text")
    tags = TagsFilter(max_length=400)
    category = django_filters.ChoiceFilter(choices=[(c, c) for c in STACK_CATEGORIES])
    sort = django_filters.ChoiceFilter(choices=[(s, s) for s in SORTS], method="sort_by", empty_label=None)

    class Meta:
        model = StyleStack
        fields = ["q", "tags", "category", "sort"]

    def search(self, qs, name, value):
        # websearch syntax ("film noir" -color); the GIN index on search_vector serves it.
        query = SearchQuery(value, search_type="websearch", config="english")
        return qs.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query))

    def sort_by(self, qs, name, value):
        return qs.order_by(*SORTS[value])

    @property
    def qs(self):
        queryset = super().qs
        if not self.form.cleaned_data.get("sort"):
            queryset = queryset.order_by(*SORTS["usage"])
        return queryset


class StyleStackFilterSet(django_filters.FilterSet):
    tags = TagsFilter(max_length=400)
    category = django_filters.ChoiceFilter(choices=[(c, c) for c in STACK_CATEGORIES])
    visibility = django_filters.ChoiceFilter(choices=StyleStack.Visibility.choices)

    class Meta:
        model = StyleStack
        fields = ["tags", "category", "visibility"]


class StylePresetFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=100)
    tags = TagsFilter(max_length=400)
    category = django_filters.ChoiceFilter(choices=Category.choices)

    class Meta:
        model = StylePreset
        fields = ["q", "tags", "category", "subcategory", "complexity_level", "is_featured"]
