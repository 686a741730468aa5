"""``make bench``: the admin as staff use it, over HTTP, under gunicorn (bench/runner.py).

**Who.** A staff member who is *not* a superuser, holding every permission
(``bench-staff@bench.velro.local``, created in each benchmark database if missing, its
permissions set again at every run so new models are covered). Such a person sees every
admin page a superuser sees, and under the production default ``ADMIN_2FA_REQUIRED=
superusers`` needs no second factor: the bench servers run with the production settings
unchanged. The person is signed in by a session made here with Django's ``SessionStore``
in the benchmark database — under the servers' ``SECRET_KEY``, which signs the session
data and the session's auth hash — and its cookie is sent with every request.

**What.** The admin index (the dashboard), every changelist of a registered model the
staff member may view (found from ``admin.site``, so a new admin is measured without a
change here), the searches staff make (generations by a prompt word and by the owner's
email, people by an email prefix, the ledger by email), two filtered changelists, the
change pages of the whale (the person with 100k generations and ledger rows), of one of
the whale's generations, of their biggest project and of the most used style stack, and
the Provider cost report. The Database health page is measured and reported, not
enforced: it checks the invariants of the whole database, by design more than one page.

**How.** One staff member at a time (a closed loop of one, as a person clicks): for each
page, a request to each of the 10k and the 1M servers to warm up, then the two sides
alternate request by request — a drift of the machine falls on both — until each has
``min_samples`` and either ``max_samples`` or the time budget is spent. Requests go over a
fresh connection (gunicorn's sync workers close each), redirects are not followed: any
answer but 200 — a 302 to the login page, a 500 — is an error, and the page fails.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field

STAFF_EMAIL = "bench-staff@bench.velro.local"
REQUEST_TIMEOUT = 120.0  # a page that takes longer is an error, not a hang


@dataclass
class Page:
    key: str  # stable, for the target's key
    name: str
    path: str  # the same page on both servers, found in each database (ids differ)
    enforced: bool = True


@dataclass
class PageTiming:
    latencies: list[float] = field(default_factory=list)  # ms
    statuses: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def ensure_staff(secret_key: str) -> str:
    """In the database of the current connection: the staff member (all permissions, not
    a superuser) and a new signed-in session of theirs, signed with ``secret_key``;
    returns the session key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Permission
    from django.contrib.sessions.backends.db import SessionStore
    from django.test.utils import override_settings

    from accounts.models import User

    user = User.objects.filter(email=STAFF_EMAIL).first()
    if user is None:
        user = User.objects.create_user(STAFF_EMAIL, None, is_staff=True)
    if not user.is_staff or user.is_superuser or not user.is_active:
        User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=False, is_active=True)
        user.refresh_from_db()
    user.user_permissions.set(Permission.objects.all())
    with override_settings(SECRET_KEY=secret_key):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
    return session.session_key


def staff_request(user):
    """A request of ``user`` for asking the admin what they may see."""
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def get(url_base: str, path: str, cookie: str) -> tuple[int, float, int]:
    """One GET with the session cookie, no redirects followed: (status, ms, bytes)."""
    host, port = url_base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "Accept": "text/html"})
        response = conn.getresponse()
        body = response.read()
        status = response.status
    finally:
        conn.close()
    return status, (time.perf_counter() - started) * 1000, len(body)


def _once(base: str, page: Page, cookie: str, timing: PageTiming | None) -> None:
    """One request of ``page``; recorded into ``timing`` (None: a warm-up)."""
    try:
        status, ms, size = get(base, page.path, cookie)
    except (OSError, http.client.HTTPException) as exc:
        status, ms, size, error = 0, REQUEST_TIMEOUT * 1000, 0, f"{type(exc).__name__}: {exc}"
    else:
        error = f"HTTP {status}" if status != 200 else ""
    if timing is None:
        return
    if error:
        timing.errors.append(f"{page.path}: {error}")
    timing.latencies.append(ms)
    timing.statuses.append(status)
    timing.sizes.append(size)


def measure(
    pages: dict[str, dict[str, Page]],
    servers: dict[str, str],
    cookies: dict[str, str],
    *,
    min_samples: int,
    max_samples: int,
    budget_s: float,
    say=None,
) -> dict[str, dict[str, PageTiming]]:
    """Time every page on both sides (the keys of ``servers``: "small", "large"),
    alternating; returns {page key: {side: PageTiming}}."""
    results: dict[str, dict[str, PageTiming]] = {}
    sides = list(servers)
    for key in pages[sides[0]]:
        timings = {side: PageTiming() for side in sides}
        for side in sides:  # warm-up: a cold cache is not what staff see all day
            _once(servers[side], pages[side][key], cookies[side], None)
        started = time.monotonic()
        while True:
            for side in sides:
                _once(servers[side], pages[side][key], cookies[side], timings[side])
            count = len(timings[sides[0]].latencies)
            if count >= max_samples or (count >= min_samples and time.monotonic() - started >= budget_s):
                break
        results[key] = timings
        if say is not None:
            shown = "  ".join(
                f"{side} p95 {percentile(t.latencies, 95):8.1f} ms ({max(t.sizes) // 1024} KiB)"
                for side, t in timings.items()
            )
            errors = sum(len(t.errors) for t in timings.values())
            say(f"admin {pages[sides[-1]][key].name:<44} {shown}" + (f"  ERRORS {errors}" if errors else ""))
    return results


def percentile(values: list[float], p: float) -> float:
    from bench.runner import percentile as _percentile

    return _percentile(values, p)
