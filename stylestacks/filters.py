import django_filters

from stylestacks.models import STACK_CATEGORY_CHOICES, Category, StylePreset, StyleStack
from velro.filters import StrictBooleanFilter


class TagsFilter(django_filters.CharFilter):
    """``?tags=noir,rain``: stacks that carry every one of these tags (GIN on tags)."""

    def filter(self, qs, value):
        tags = [t.strip().lower() for t in (value or "").split(",") if t.strip()]
        return qs.filter(tags__contains=tags) if tags else qs


class StyleStackFilterSet(django_filters.FilterSet):
    tags = TagsFilter(max_length=400)
    category = django_filters.ChoiceFilter(choices=STACK_CATEGORY_CHOICES)
    visibility = django_filters.ChoiceFilter(choices=StyleStack.Visibility.choices)

    class Meta:
        model = StyleStack
        fields = ["tags", "category", "visibility"]


class StylePresetFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=100)
    is_featured = StrictBooleanFilter()
    tags = TagsFilter(max_length=400)
    category = django_filters.ChoiceFilter(choices=Category.choices)

    class Meta:
        model = StylePreset
        fields = ["q", "tags", "category", "subcategory", "complexity_level", "is_featured"]
