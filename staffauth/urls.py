"""Under /admin/ (included by velro/urls.py before the admin's own URLs): the admin's
login with its limits, and the two-factor pages. Staff pages go through admin_view."""

from django.contrib import admin
from django.urls import path

from staffauth import views

app_name = "staffauth"

urlpatterns = [
    # The admin's own login/ path, matched first: reverse("admin:login") still names it.
    path("login/", views.admin_login, name="login"),
    path("2fa/", admin.site.admin_view(views.manage_view), name="manage"),
    path("2fa/enrol/", admin.site.admin_view(views.enrol_view), name="enrol"),
    path("2fa/verify/", admin.site.admin_view(views.verify_view), name="verify"),
]
