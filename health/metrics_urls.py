"""``/metrics`` for Prometheus (health/prometheus.py), included at the root by velro/urls.py."""

from django.urls import path

from health.prometheus import metrics_view

urlpatterns = [path("", metrics_view, name="metrics")]
