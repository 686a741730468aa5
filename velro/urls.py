from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path, reverse_lazy
from django.views.generic import RedirectView

from velro import views

admin.site.site_header = "Velro admin"
admin.site.site_title = "Velro admin"
admin.site.index_title = "Velro"
admin.site.site_url = reverse_lazy("docs")  # "View site": the API's documentation

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="docs"), name="home"),
    path("api/v1/", include("velro.api_urls")),
    # Supabase Auth's (GoTrue's) HTTP surface, for supabase-js / supabase-py clients.
    path("auth/v1/", include("accounts.gotrue_urls")),
    # Prometheus' scrape: token or allowed networks only (README, "Operating it: metrics and alerts").
    path("metrics", include("health.metrics_urls")),
    # Before admin/: staff pages of the admin that are not a model's (Database health).
    path("admin/", include("health.admin_urls")),
    # Before admin/ too: the admin's login with its limits, and two-factor sign-in.
    path("admin/", include("staffauth.urls")),
    path("admin/", include("generations.admin_urls")),  # Provider cost (issue 19)
    path("admin/", admin.site.urls),
]

if settings.MEDIA_STORAGE == "local":
    # Uploads and generated files from MEDIA_ROOT, in production too: signed links only
    # (velro/media_links.py), streamed with Range support.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", views.media, name="media"),
    ]

# JSON, not Django's HTML pages, for errors under /api/.
handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.not_found
handler500 = views.server_error
