from django.apps import AppConfig


class StaffAuthConfig(AppConfig):
    """Staff sign-in to the admin: limits on failed sign-ins, two-factor sign-in with
    django-otp, and idle expiry of staff sessions (README, "Staff sign-in")."""

    name = "staffauth"
    verbose_name = "Staff sign-in"
