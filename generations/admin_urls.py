"""Under /admin/ (included by velro/urls.py before the admin's own URLs): the admin page
"Provider cost" (generations/admin_reports.py), staff with the view permission only."""

from django.contrib import admin
from django.urls import path

from generations.admin_reports import provider_cost_view

urlpatterns = [
    path("provider-cost/", admin.site.admin_view(provider_cost_view), name="admin-provider-cost"),
]
