from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from velro import views
from velro.health.views import dbhealth_admin_view

admin.site.site_header = "Velro admin"
admin.site.site_title = "Velro admin"
admin.site.index_title = "Velro"
# Adds an "Operations" module (Database health) above the app list.
admin.site.index_template = "admin/velro/index.html"

urlpatterns = [
    path("api/v1/", include("velro.api_urls")),
    # Before admin/: a staff page of the admin that is not a model's.
    path("admin/dbhealth/", admin.site.admin_view(dbhealth_admin_view), name="admin-dbhealth"),
    path("admin/", admin.site.urls),
]

if settings.SERVE_MEDIA:
    # Uploads and generated files, for development; in production a web server or
    # object storage serves MEDIA_ROOT.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", views.media, name="media"),
    ]

# JSON, not Django's HTML pages, for errors under /api/.
handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.not_found
handler500 = views.server_error
