"""Everything under /api/v1/. Each app contributes its own urls module."""

from django.urls import include, path, re_path

from velro.health.views import HealthReportView, HealthView
from velro.views import ApiNotFound

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("generations.urls")),
    path("", include("credits.urls")),
    path("", include("stylestacks.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("health/report", HealthReportView.as_view(), name="health-report"),
    # Keep last.
    re_path(r"^", ApiNotFound.as_view(), name="api-not-found"),
]
