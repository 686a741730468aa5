import django_filters

from projects.models import Project
from velro.filters import StrictBooleanFilter


class ProjectFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=120, label="Name contains")
    archived = StrictBooleanFilter(field_name="archived_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Project
        fields = ["visibility"]
