"""Under /admin/ (included by velro/urls.py before the admin's own URLs): the admin page
"Database health", staff only (a page of the admin that is not a model's)."""

from django.contrib import admin
from django.urls import path

from health.views import dbhealth_admin_view

urlpatterns = [
    path("dbhealth/", admin.site.admin_view(dbhealth_admin_view), name="admin-dbhealth"),
]
