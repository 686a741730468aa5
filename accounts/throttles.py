"""Rate limits of the auth endpoints: login, register and refresh.

Each endpoint is limited per client IP and per person: login and register per email
(lower-cased), refresh per person whose refresh token it is. The rates are DRF
throttle scopes in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (settings, "Rate limits")
and are read on every request. Over a limit the answer is a 429 in the API's error
shape, ``{"detail": "Too many login attempts for this email. Try again in 42 seconds.",
"code": "throttled"}``, with a ``Retry-After`` header.

The counters live in Django's cache, a database table (``CACHES``), so all gunicorn
workers and machines share them. They must outlive the request they count: a refused
login is a 401, and DRF rolls the request's transaction back. So the auth views count
in autocommit, outside ``ATOMIC_REQUESTS``, while their own work still runs in one
transaction that a refusal rolls back (:class:`RateLimitedView`). Each check reads,
compares and writes a counter under an advisory lock on its key, so a burst of parallel
requests gets exactly the limit, not one pass per request that read the old count.

The client IP is ``REMOTE_ADDR``; ``X-Forwarded-For`` is believed only as far as
``NUM_PROXIES`` trusted proxies append to it (DRF's rule).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import math

from django.db import connection, transaction
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


class RateLimited(exceptions.Throttled):
    """A 429 whose message says which limit was hit and when to come back."""

    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."


def _field(request, name: str):
    """``request.data[name]``, or None for a body that is not an object (a JSON list)."""
    data = request.data
    return data.get(name) if hasattr(data, "get") else None


# pg_advisory_xact_lock(namespace, key): the first int4 keeps these locks apart from any
# other advisory lock the database may see.
LOCK_NAMESPACE = 0x7E1_0429


def _lock_key(cache_key: str) -> int:
    return int.from_bytes(hashlib.sha256(cache_key.encode("utf-8")).digest()[:4], "big", signed=True)


@contextlib.contextmanager
def counter_lock(cache_key: str):
    """A transaction holding the advisory lock of ``cache_key`` until it ends: the counter
    stored under that key can be read, compared and written back without a parallel
    request doing the same in between. Outside a transaction (autocommit) the write is
    committed when the block ends; the admin's sign-in limits (staffauth/limits.py) count
    with it too."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, _lock_key(cache_key)])
        yield


def digest(value: str) -> str:
    # The cache key holds a hash, not the email or user id itself. surrogatepass: a lone
    # surrogate in the JSON body is the view's 400 to give, not a crash here.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class AuthRateThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle whose rate is read from the settings at each request (DRF
    binds the class attribute once at import) and whose wait is exact."""

    message = "Too many requests"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def identity(self, request, view) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        ident = self.identity(request, view)
        if not ident:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        """DRF's check, made atomic: DRF reads the history and writes it back, so a burst
        of requests at once would all read the same old history and all pass. Here the
        read, check and write run in one transaction holding an advisory lock on the key,
        so requests for one key take turns across every process and machine."""
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        with counter_lock(self.key):
            self.history = self.cache.get(self.key, [])
            self.now = self.timer()
            while self.history and self.history[-1] <= self.now - self.duration:
                self.history.pop()
            if len(self.history) >= self.num_requests:
                return self.throttle_failure()
            return self.throttle_success()

    def wait(self):
        # The request after the limit is allowed once the num_requests-th newest
        # request in the window has aged out (history is newest first).
        if len(self.history) < self.num_requests:
            return 0
        return max(1, math.ceil(self.history[self.num_requests - 1] + self.duration - self.now))


def client_ip(request) -> str | None:
    """The client's address by DRF's rule (``REMOTE_ADDR``, or ``X-Forwarded-For`` as
    far as ``NUM_PROXIES`` trusted proxies append to it); None when that is not an
    address."""
    try:
        return str(ipaddress.ip_address(BaseThrottle().get_ident(request)))
    except ValueError:
        return None


class IPRateThrottle(AuthRateThrottle):
    def identity(self, request, view):
        ident = self.get_ident(request)
        if not ident:
            return None
        # Not an address (X-Forwarded-For from a client when NUM_PROXIES is too high):
        # still a key, of bounded length.
        return client_ip(request) or digest(ident)


class EmailRateThrottle(AuthRateThrottle):
    """Keyed by the ``email`` of the JSON body, normalised; no email, no limit here
    (the view answers 400 and the IP limit still counts)."""

    def identity(self, request, view):
        # A body that does not parse raises ParseError here: the 400 the view would give.
        email = _field(request, "email")
        if not isinstance(email, str) or not email.strip():
            return None
        return digest(email.strip().lower())


class LoginIPThrottle(IPRateThrottle):
    scope = "login_ip"
    message = "Too many login attempts from this address"


class LoginEmailThrottle(EmailRateThrottle):
    scope = "login_email"
    message = "Too many login attempts for this email"


class RegisterIPThrottle(IPRateThrottle):
    scope = "register_ip"
    message = "Too many sign-ups from this address"


class RegisterEmailThrottle(EmailRateThrottle):
    scope = "register_email"
    message = "Too many sign-up attempts for this email"


class RefreshIPThrottle(IPRateThrottle):
    scope = "refresh_ip"
    message = "Too many token refreshes from this address"


class RefreshUserThrottle(AuthRateThrottle):
    """Keyed by the person whose refresh token it is. A forged token has no person (its
    HMAC is checked before the database is asked; the view answers 401): nobody can
    spend someone else's quota."""

    scope = "refresh_user"
    message = "Too many token refreshes for this account"
    field = "refresh"

    def identity(self, request, view):
        from accounts.sessions import session_of_token  # sessions reads client_ip here

        session = session_of_token(_field(request, self.field))
        return digest(str(session.user_id)) if session is not None else None


class EmailSendIPThrottle(IPRateThrottle):
    scope = "email_send_ip"
    message = "Too many emails requested from this address"


class EmailSendThrottle(EmailRateThrottle):
    scope = "email_send_email"
    message = "Too many emails requested for this address"


class VerifyIPThrottle(IPRateThrottle):
    scope = "verify_ip"
    message = "Too many codes tried from this address"


class VerifyEmailThrottle(EmailRateThrottle):
    """Six-digit codes: guessed from many addresses at once, the per-IP limit alone would
    not hold; per email it does (10 an hour: one chance in 100,000 an hour)."""

    scope = "verify_email"
    message = "Too many codes tried for this email"


class NamedLimitMixin:
    """A view whose 429 names the limit that was hit and when to come back ("Too many
    invitations. Try again in 42 seconds.", with Retry-After): the throttles are checked
    in order and the first one over its limit answers, so later ones are not counted
    for a refused request."""

    def check_throttles(self, request):
        for throttle in self.get_throttles():
            if not throttle.allow_request(request, self):
                raise RateLimited(wait=throttle.wait(), detail=f"{throttle.message}.")


class RateLimitedView(NamedLimitMixin):
    """Mixin for the auth views: counts requests outside the request's transaction.

    * ``as_view`` marks the view ``non_atomic_requests``: the throttles read and write
      their counters in autocommit, each write committed at once (no row lock held for
      the rest of the request, nothing lost when the request fails).
    * The handler (``post``) then runs inside ``transaction.atomic()``, as it would
      under ``ATOMIC_REQUESTS``: when it raises, its writes are rolled back.
    * Errors become responses inside an atomic block of their own: DRF's
      ``set_rollback`` marks the innermost block, which must not be an enclosing
      transaction (a test's).
    * The throttles are checked in order (IP first) and the first one over its limit
      answers: later ones are not counted for a refused request.
    """

    @classmethod
    def as_view(cls, **initkwargs):
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        handler = getattr(self, method, None)
        if method in self.http_method_names and handler is not None:
            # An instance attribute: DRF's dispatch looks the handler up after initial().
            setattr(self, method, transaction.atomic()(handler))

    def handle_exception(self, exc):
        with transaction.atomic():
            return super().handle_exception(exc)
