import django_filters

from generations.models import Generation
from velro.filters import StrictBooleanFilter, UTCDateTimeFilter


class GenerationFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Generation.Status.choices)
    ai_model = django_filters.CharFilter(field_name="ai_model_id", max_length=200)
    project = django_filters.UUIDFilter(field_name="project_id")
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    is_favorite = StrictBooleanFilter()

    class Meta:
        model = Generation
        fields = ["status", "ai_model", "project", "created_after", "created_before", "is_favorite"]
