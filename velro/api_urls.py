"""Everything under /api/v1/. Each app contributes its own urls module."""

from django.urls import include, path, re_path

from velro.openapi import RedocView, SchemaView, SwaggerView
from velro.views import ApiNotFound, ApiRoot

urlpatterns = [
    path("", ApiRoot.as_view(), name="api-root"),
    # The apps' prefixes are disjoint, so the order only decides how many patterns a
    # request tries first: generations, the hottest (make bench), before the others.
    path("", include("generations.urls")),
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("credits.urls")),
    path("", include("stylestacks.urls")),
    path("", include("billing.urls")),
    path("", include("health.urls")),
    path("schema", SchemaView.as_view(), name="schema"),
    path("docs", SwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc", RedocView.as_view(url_name="schema"), name="redoc"),
    # Keep last.
    re_path(r"^", ApiNotFound.as_view(), name="api-not-found"),
]
