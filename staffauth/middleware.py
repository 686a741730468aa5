"""The admin's staff sessions: idle expiry, and the two-factor step before any page.

Only requests under the admin's URL (``/admin/``) by a signed-in staff member are
looked at; nothing else reads the session here, so the API (JWT on /api/v1 and /auth/v1)
is untouched. Installed after django-otp's OTPMiddleware (``request.user.is_verified()``)
and MessageMiddleware.
"""

import functools
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from staffauth import services

# The session key of the last-activity stamp (whole seconds since the epoch).
LAST_SEEN = "staffauth_last_seen"
# The stamp is rewritten (a session save) at most once this many seconds, not at every
# request; expiry is therefore exact to within this.
STAMP_EVERY = 60


@functools.lru_cache(maxsize=16)
def _admin_root(urlconf: str) -> str | None:
    """The admin's URL prefix ("/admin/") in ``urlconf``, or None under a URLconf without
    the admin. Kept per URLconf: this runs on every request, API hot paths included, and a
    reverse() costs about 20 µs."""
    try:
        return reverse("admin:index", urlconf=urlconf)
    except NoReverseMatch:
        return None


class StaffSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        root = _admin_root(getattr(request, "urlconf", None) or settings.ROOT_URLCONF)
        if root is not None and request.path.startswith(root):
            user = request.user
            if user.is_authenticated and user.is_staff:
                if self._idle_expired(request):
                    logout(request)
                    minutes = max(1, settings.ADMIN_SESSION_IDLE_TIMEOUT // 60)
                    messages.info(request, f"You were signed out after {minutes} minutes without activity.")
                else:
                    detour = self._two_factor_step(request)
                    if detour is not None:
                        return detour
        return self.get_response(request)

    def _idle_expired(self, request) -> bool:
        """Whether the session was idle past ADMIN_SESSION_IDLE_TIMEOUT; if not, keeps the
        stamp fresh (written only when it is STAMP_EVERY seconds old)."""
        timeout = settings.ADMIN_SESSION_IDLE_TIMEOUT
        if not timeout:
            return False
        now = int(time.time())
        last_seen = request.session.get(LAST_SEEN)
        if isinstance(last_seen, int) and now - last_seen > timeout:
            return True
        if not isinstance(last_seen, int) or now - last_seen >= STAMP_EVERY:
            request.session[LAST_SEEN] = now
        return False

    def _two_factor_step(self, request):
        """A redirect to the verify step (staff with an authenticator, not yet verified in
        this session) or to enrolment (two-factor sign-in required, none enrolled); None
        to go on. The login, logout and the step's own page always go on."""
        user = request.user
        if user.is_verified():
            return None
        path = request.path
        if path in (reverse("admin:login"), reverse("admin:logout"), reverse("staffauth:verify")):
            return None
        if services.authenticator_get(user) is not None:
            step = "staffauth:verify"
        elif services.two_factor_required(user):
            if path == reverse("staffauth:enrol"):
                return None
            step = "staffauth:enrol"
        else:
            return None
        return redirect(f"{reverse(step)}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}")
