"""``/auth/v1``: Supabase Auth's paths (accounts/gotrue.py, gotrue_flows.py, gotrue_admin.py)."""

from django.urls import path, re_path

from accounts import gotrue, gotrue_admin, gotrue_flows

urlpatterns = [
    path("health", gotrue.health, name="gotrue-health"),
    path("settings", gotrue.settings_view, name="gotrue-settings"),
    path(".well-known/jwks.json", gotrue.jwks, name="gotrue-jwks"),
    path("token", gotrue_flows.token, name="gotrue-token"),
    path("signup", gotrue_flows.signup, name="gotrue-signup"),
    path("logout", gotrue_flows.logout, name="gotrue-logout"),
    path("user", gotrue_flows.user_view, name="gotrue-user"),
    path("recover", gotrue_flows.recover, name="gotrue-recover"),
    path("otp", gotrue_flows.otp, name="gotrue-otp"),
    path("resend", gotrue_flows.resend, name="gotrue-resend"),
    path("verify", gotrue_flows.verify, name="gotrue-verify"),
    path("admin/users", gotrue_admin.users, name="gotrue-admin-users"),
    # Any string, not <uuid:>: a malformed id is the admin API's own 404, after the key check.
    path("admin/users/<str:user_id>", gotrue_admin.user, name="gotrue-admin-user"),
    re_path(r"^(?P<path>.*)$", gotrue.not_found),
]
