"""``/auth/v1``: Supabase Auth's paths (accounts/gotrue.py)."""

from django.urls import path, re_path

from accounts import gotrue

urlpatterns = [
    path("health", gotrue.health, name="gotrue-health"),
    path("settings", gotrue.settings_view, name="gotrue-settings"),
    path("user", gotrue.user_view, name="gotrue-user"),
    path(".well-known/jwks.json", gotrue.jwks, name="gotrue-jwks"),
    re_path(r"^(?P<path>.*)$", gotrue.not_found),
]
