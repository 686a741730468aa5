"""Under /api/v1/ (included by velro/api_urls.py): liveness for load balancers, the full
report for staff."""

from django.urls import path

from health.views import HealthReportView, HealthView

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("health/report", HealthReportView.as_view(), name="health-report"),
]
