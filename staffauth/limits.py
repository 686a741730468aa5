"""Failed sign-ins to the admin, counted per account and per client IP.

The counters are the API's (accounts/throttles.py): a list of timestamps in Django's
database cache under a key, read, compared and written back under the advisory lock of
that key (``counter_lock``), each check committed at once. The views that count are
``non_atomic_requests``, so ``ATOMIC_REQUESTS`` neither delays a count until the request
ends (a parallel attempt would not see it) nor rolls it back.

Only failures count, and counting holds under parallel attempts: an attempt first takes
a place in each counter (refused if the counter is full), then checks the password or
code, and gives its places back when that succeeds. So N attempts at once against a
limit of L get at most L password checks, and a successful sign-in costs nothing. It
resets nothing either: failures age out of the window. (Resetting the IP counter would
let one valid account spray passwords at the others from the same address; resetting
the account counter on a right password would give back the code guesses of the
second step, which count in the same counter.)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from accounts.throttles import client_ip, counter_lock, digest

logger = logging.getLogger("staffauth")


def _now() -> float:
    return time.time()


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A full counter: which one (``account`` or ``ip``) and seconds until a place frees."""

    scope: str
    wait: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.wait / 60))

    @property
    def message(self) -> str:
        who = "for this account" if self.scope == "account" else "from this address"
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"Too many failed sign-ins {who}. Try again in {self.minutes} {unit}."


@dataclasses.dataclass(frozen=True)
class _Counter:
    scope: str
    key: str
    limit: int
    duration: int


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _counter(scope: str, ident: str, rate: str | None) -> _Counter | None:
    """The counter of ``scope`` for ``ident`` at ``rate`` ("10/hour", checked by the
    settings; DRF's format), or None when that limit is off."""
    if rate is None:
        return None
    count, _, period = rate.partition("/")
    return _Counter(scope, f"staffauth_failed_signin_{scope}_{ident}", int(count), _PERIODS[period[0]])


class FailedSignIns:
    """One sign-in attempt (a password, or a second-factor code) for ``account`` (an
    email, as typed) from the request's client IP.

    ``reserve()`` before checking the secret; ``release()`` once it proved right. An
    attempt that is never released stays counted as a failure.
    """

    def __init__(self, request, account: str):
        self.account_digest = digest(account.strip().lower())
        self.ip = client_ip(request) or "unknown"
        # IP first, as the API's limits: a refusal there does not touch the account's.
        counters = (
            _counter("ip", self.ip, settings.ADMIN_LOGIN_RATE_IP),
            _counter("account", self.account_digest, settings.ADMIN_LOGIN_RATE_ACCOUNT),
        )
        self.counters = [counter for counter in counters if counter is not None]
        self._taken: list[tuple[_Counter, float]] = []

    def reserve(self) -> Refusal | None:
        """Take a place in every counter, or return the refusal of the first full one
        (the places taken so far are given back: a refused attempt does not count).
        Logs a WARNING for a refusal: the account's digest and the IP, never a secret."""
        for counter in self.counters:
            now = _now()
            with counter_lock(counter.key):
                history = sorted(t for t in cache.get(counter.key, []) if t > now - counter.duration)
                if len(history) >= counter.limit:
                    # The next attempt fits once enough of the oldest ones age out.
                    oldest_to_expire = history[len(history) - counter.limit]
                    refusal = Refusal(counter.scope, max(1, math.ceil(oldest_to_expire + counter.duration - now)))
                else:
                    refusal = None
                    cache.set(counter.key, [*history, now], counter.duration)
            if refusal is not None:
                self.release()
                logger.warning(
                    "admin sign-in refused: too many failed sign-ins (%s limit) for account %s from %s",
                    counter.scope,
                    self.account_digest,
                    self.ip,
                )
                return refusal
            self._taken.append((counter, now))
        return None

    def release(self) -> None:
        """Give the places back: this attempt did not fail."""
        for counter, stamp in self._taken:
            with counter_lock(counter.key):
                history = cache.get(counter.key, [])
                if stamp in history:
                    history.remove(stamp)
                    cache.set(counter.key, history, counter.duration)
        self._taken = []
