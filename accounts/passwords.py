"""Leaked-password protection: :class:`BreachedPasswordValidator`, one of Django's
password validators (``AUTH_PASSWORD_VALIDATORS``), so sign-up, the admin and
``changepassword`` all refuse a password that is known from a data breach.

How a password is checked:

1. With ``PASSWORD_BREACH_CHECK`` on (the default), the k-anonymity range API of Have I
   Been Pwned: ``GET {PASSWORD_BREACH_API_URL}{first 5 hex chars of the SHA-1}`` with the
   header ``Add-Padding: true``. Only that prefix leaves the server, never the password
   or the rest of its hash; the answer lists every known hash suffix with that prefix as
   ``SUFFIX:COUNT`` lines (padding lines have count 0), and the suffix is looked up
   here. A password seen at least ``PASSWORD_BREACH_THRESHOLD`` times is refused.
2. With the check off, or when the API cannot give an answer (unreachable, slower than
   ``PASSWORD_BREACH_TIMEOUT`` seconds, a non-200 status, a body that is not range
   lines), the bundled list ``accounts/data/breached-passwords.txt.gz`` instead:
   209,086 lower-cased passwords from published dumps, about ten times Django's common
   list (how it was built and how to rebuild it: ``accounts/data/build_breached_passwords.py``).
   A sign-up never fails because the API is down; a warning is logged.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import re
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.pwnedpasswords.com/range/"
DEFAULT_TIMEOUT = 2.0
BUNDLED_LIST_PATH = Path(__file__).resolve().parent / "data" / "breached-passwords.txt.gz"
PREFIX_LENGTH = 5
USER_AGENT = "velro-password-check"
# A real answer is ~30 KB (about 1,000 padded lines); anything far larger is not one.
MAX_ANSWER_BYTES = 1_000_000
_RANGE_LINE = re.compile(r"([0-9A-Fa-f]{35}):([0-9]+)")


class BreachCheckUnavailable(Exception):
    """The range API gave no usable answer; the reason is the message."""


@functools.cache
def bundled_passwords() -> frozenset[str]:
    """The bundled list, read once per process on first use (lower-cased, one a line)."""
    with gzip.open(BUNDLED_LIST_PATH, "rt", encoding="utf-8") as handle:
        return frozenset(stripped for line in handle if (stripped := line.strip()))


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def range_url(api_url: str, prefix: str) -> str:
    return (api_url if api_url.endswith("/") else api_url + "/") + prefix


def breach_count(password: str, *, api_url: str, timeout: float) -> int:
    """How often the range API has seen ``password`` (0: never).

    Raises :class:`BreachCheckUnavailable` when it gives no usable answer within
    ``timeout`` seconds (connect, and the whole answer).
    """
    digest = sha1_hex(password)
    prefix, suffix = digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]
    deadline = time.monotonic() + timeout
    headers = {"Add-Padding": "true", "User-Agent": USER_AGENT}
    try:
        with httpx.stream("GET", range_url(api_url, prefix), headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                raise BreachCheckUnavailable(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise BreachCheckUnavailable("answer too large")
                if time.monotonic() > deadline:
                    raise BreachCheckUnavailable(f"no complete answer within {timeout} s")
    except httpx.TimeoutException as exc:
        raise BreachCheckUnavailable(f"no answer within {timeout} s") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise BreachCheckUnavailable(type(exc).__name__) from exc

    try:
        lines = [line.strip() for line in body.decode("ascii").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise BreachCheckUnavailable("answer is not range lines") from exc
    if not lines:
        raise BreachCheckUnavailable("empty answer")
    count = 0
    for line in lines:
        match = _RANGE_LINE.fullmatch(line)
        if match is None:
            raise BreachCheckUnavailable("answer is not range lines")
        if match[1].upper() == suffix:
            count = int(match[2])
    return count


class BreachedPasswordValidator:
    """Refuse passwords known from data breaches (see the module docstring).

    The settings are read on every call, so tests and a changed environment apply at
    once; OPTIONS in AUTH_PASSWORD_VALIDATORS (``enabled``, ``api_url``, ``timeout``,
    ``threshold``) override them.
    """

    def __init__(self, enabled=None, api_url=None, timeout=None, threshold=None):
        self.enabled = enabled
        self.api_url = api_url
        self.timeout = timeout
        self.threshold = threshold

    def _setting(self, override, name, default):
        return override if override is not None else getattr(settings, name, default)

    def validate(self, password, user=None):
        threshold = max(1, int(self._setting(self.threshold, "PASSWORD_BREACH_THRESHOLD", 1)))
        count = None
        if self._setting(self.enabled, "PASSWORD_BREACH_CHECK", True):
            api_url = self._setting(self.api_url, "PASSWORD_BREACH_API_URL", "") or DEFAULT_API_URL
            timeout = float(self._setting(self.timeout, "PASSWORD_BREACH_TIMEOUT", DEFAULT_TIMEOUT))
            try:
                count = breach_count(password, api_url=api_url, timeout=timeout)
            except BreachCheckUnavailable as exc:
                logger.warning("Leaked-password API unavailable (%s): checking the bundled list instead.", exc)

        if count is None:
            if password.lower().strip() in bundled_passwords():
                raise ValidationError(
                    _("This password has appeared in a data breach; choose another."), code="password_breached"
                )
        elif count >= threshold:
            raise ValidationError(
                ngettext(
                    "This password has appeared in a data breach %(count)s time; choose another.",
                    "This password has appeared in a data breach %(count)s times; choose another.",
                    count,
                ),
                code="password_breached",
                params={"count": f"{count:,}"},
            )

    def get_help_text(self):
        return _("Your password can’t be one that has appeared in a known data breach.")
