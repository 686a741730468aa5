from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class StaffAuthConfig(AppConfig):
    """Staff sign-in to the admin: limits on failed sign-ins, two-factor sign-in with
    django-otp, and idle expiry of staff sessions (README, "Staff sign-in")."""

    name = "staffauth"
    verbose_name = "Staff sign-in"

    def ready(self):
        checks.register(check_two_factor_required, checks.Tags.security, deploy=True)


def check_two_factor_required(app_configs=None, **kwargs):
    """``check --deploy``: a production admin whose superusers sign in with a password alone."""
    if settings.DEBUG or settings.ADMIN_2FA_REQUIRED != "off":
        return []
    return [
        checks.Warning(
            "ADMIN_2FA_REQUIRED is off: superusers sign in to the admin with a password alone.",
            hint="Unset it (superusers must use an authenticator app) or set it to staff.",
            id="staffauth.W001",
        )
    ]
