from django_otp.plugins.otp_totp.models import TOTPDevice


class TwoFactorDevice(TOTPDevice):
    """A staff member's authenticator app (django-otp's TOTPDevice), as the admin lists it
    under "Staff sign-in" for a superuser's reset (staffauth/admin.py). No table of its own."""

    class Meta:
        proxy = True
        verbose_name = "two-factor authenticator"
        verbose_name_plural = "two-factor authenticators"
