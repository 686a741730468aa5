"""Two-factor sign-in of staff: enrolling an authenticator app, recovery codes, checking
a code, turning it off or resetting it.

A person's authenticator is a django-otp ``TOTPDevice``; it counts only once confirmed
with a code from the app. Their recovery codes are one ``StaticDevice`` named
"Recovery codes" whose tokens are used up one by one. The two come and go together:
enrolling makes both, turning off or a superuser's reset deletes both.
"""

from __future__ import annotations

import base64
import re

import django_otp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10
_TOTP_CODE = re.compile(r"[0-9]{6}")


def two_factor_required(user: User) -> bool:
    """Whether ``ADMIN_2FA_REQUIRED`` makes ``user`` sign in to the admin with a second factor."""
    policy = settings.ADMIN_2FA_REQUIRED
    return bool(user.is_staff and (policy == "staff" or (policy == "superusers" and user.is_superuser)))


def authenticator_get(user: User) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they enrolled one."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def enrolment_start(user: User) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled: the newest one left from an earlier
    visit (so a reload keeps the QR code the app may have scanned already), else a new
    one with a fresh random key."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def enrolment_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it typed in: base32, without padding."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def enrolment_qr_source(device: TOTPDevice) -> str:
    """The otpauth:// URI the QR code holds (django-otp's, issuer ``OTP_TOTP_ISSUER``)."""
    return device.config_url


def enrolment_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URI as a QR code, an inline ``<svg>`` element (drawn here:
    the secret never goes to a QR service)."""
    image = qrcode.make(enrolment_qr_source(device), image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return image.to_string(encoding="unicode")


def normalise_code(code: str) -> str:
    """What was typed, without spaces or dashes, lower-cased (recovery codes are shown
    lower-case; TOTP codes are digits)."""
    return re.sub(r"[\s-]+", "", code or "").lower()


def enrolment_confirm(device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the unconfirmed ``device`` with a code from the app: then it counts, other
    unconfirmed ones go, and new recovery codes are made and returned (shown once).
    None when the code is wrong (nothing changes)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(pk=device.pk, confirmed=False).first()
        if device is None:  # confirmed (or removed) by a parallel request meanwhile
            return None
        if not (_TOTP_CODE.fullmatch(normalise_code(code)) and device.verify_token(normalise_code(code))):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=device.user_id, confirmed=False).delete()
        return recovery_codes_regenerate(device.user)


def recovery_codes_regenerate(user: User) -> list[str]:
    """New recovery codes for ``user``, replacing any left: returned once, to be shown."""
    with transaction.atomic():
        # The device stays (only its codes change): a session verified with one of its
        # codes stays verified.
        device = StaticDevice.objects.filter(user=user).order_by("id").first()
        if device is None:
            device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
        StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def code_check(user: User, code: str) -> Device | None:
    """The device that accepts ``code`` for ``user``: six digits are checked against the
    authenticator app (a code is accepted once: django-otp keeps the last time step), any
    other code against the recovery codes, which it then uses up. None when it is wrong
    or the user has no authenticator."""
    authenticator = authenticator_get(user)
    if authenticator is None:
        return None
    code = normalise_code(code)
    if not code:
        return None
    if _TOTP_CODE.fullmatch(code):
        return django_otp.verify_token(user, authenticator.persistent_id, code)
    recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
    return django_otp.verify_token(user, recovery.persistent_id, code) if recovery else None


def two_factor_remove(user: User) -> bool:
    """Delete the user's authenticators and recovery codes (turning two-factor sign-in
    off, or a superuser's reset). A session verified with one of them is no longer
    verified at its next request (django-otp's middleware no longer finds the device).
    Returns whether there was anything to delete."""
    with transaction.atomic():
        totp, _ = TOTPDevice.objects.filter(user=user).delete()
        static, _ = StaticDevice.objects.filter(user=user).delete()
    return bool(totp or static)
