from django.contrib import admin
from django.urls import include, path

from velro import views

admin.site.site_header = "Velro admin"
admin.site.site_title = "Velro admin"
admin.site.index_title = "Velro"

urlpatterns = [
    path("api/v1/", include("velro.api_urls")),
    path("admin/", admin.site.urls),
]

# JSON, not Django's HTML pages, for errors under /api/.
handler404 = views.not_found
handler500 = views.server_error
