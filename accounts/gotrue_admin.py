"""``/auth/v1/admin``: GoTrue's admin API for people, as supabase-py's ``auth.admin``
calls it (issue 16; ../shared/reference/SUPABASE_AUTH.md, section 2): ``GET`` and
``POST admin/users``, ``GET``, ``PUT`` and ``DELETE admin/users/{id}``.

Only the ``service_role`` key may call it, and only as the ``Authorization`` bearer, as
GoTrue checks the bearer's role: the ``apikey`` header says which project a request is
for, not who makes it (a browser holding the anon key sends it there too), and a
person's access token is never enough. Anything else is a 403 ``not_admin``.

People are made and changed through the same services as everywhere else
(``user_register``: the profile trigger and its sign-up credits; ``password_change`` and
``user_ban``: their sessions end), and deleted as the Django admin deletes them. Each
write runs in one transaction, so a refusal halfway leaves nothing behind.
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import timedelta
from fractions import Fraction
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone

from accounts import services
from accounts.apikeys import api_key_role
from accounts.gotrue import bearer_token, user_object
from accounts.gotrue_flows import (
    Refused,
    check_password_strength,
    email_field,
    gotrue_view,
    json_body,
    merged_metadata,
    text_field,
)
from accounts.models import User

DEFAULT_PER_PAGE = 50  # GoTrue's
MAX_PER_PAGE = 1000
EMAIL_EXISTS = "A user with this email address has already been registered"
# What supabase-py may send that Velro cannot honour: refused rather than ignored, so a
# caller never gets a different person from the one asked for.
UNSUPPORTED = ("phone", "password_hash", "id")


def admin_view(*methods):
    """:func:`gotrue_view` for the service_role bearer only."""

    def decorate(view):
        @functools.wraps(view)
        def admin_only(request, *args, **kwargs):
            if api_key_role(bearer_token(request)) != "service_role":
                raise Refused(403, "not_admin", "User not allowed")
            return view(request, *args, **kwargs)

        return gotrue_view(*methods)(admin_only)

    return decorate


@admin_view("GET", "POST")
def users(request):
    """``GET admin/users?page=&per_page=``: a page of people, newest first, with
    GoTrue's ``X-Total-Count`` and ``Link`` headers. ``POST admin/users``: a new person."""
    if request.method == "POST":
        return JsonResponse(user_object(_create(json_body(request))))
    page, per_page = _page_number(request, "page", 1), _page_number(request, "per_page", DEFAULT_PER_PAGE)
    per_page = min(per_page, MAX_PER_PAGE)
    total = User.objects.count()
    offset = (page - 1) * per_page
    # GoTrue's order (created_at, newest first), with the id to break ties so pages
    # never overlap or skip someone.
    people = User.objects.order_by("-created_at", "-id")[offset : offset + per_page] if offset < total else []
    response = JsonResponse({"users": [user_object(person) for person in people], "aud": "authenticated"})
    response["X-Total-Count"] = str(total)
    response["Link"] = _links(request, page, last=(total + per_page - 1) // per_page)
    return response


@admin_view("GET", "PUT", "DELETE")
def user(request, user_id: str):
    """``GET``, ``PUT`` (GoTrue's ``AdminUserParams``) and ``DELETE admin/users/{id}``."""
    if request.method == "GET":
        return JsonResponse(user_object(_user(user_id)))
    body = json_body(request)
    if request.method == "PUT":
        return JsonResponse(user_object(_update(user_id, body)))
    _delete(user_id, body)
    return JsonResponse({})


# --- reading the request -------------------------------------------------------------------


def _page_number(request, name: str, default: int) -> int:
    """A page parameter: empty or absent is the default (supabase-py sends ``page=`` when
    none is given), otherwise a whole number from 1."""
    value = request.GET.get(name, "")
    if value == "":
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise Refused(400, "validation_failed", f"Bad Pagination Parameters: {name} must be a whole number from 1")
    return int(value)


def _links(request, page: int, *, last: int) -> str:
    """GoTrue's ``Link``: the request's own URL with ``page`` replaced, ``rel="next"``
    while there is a next page, then ``rel="last"`` (page 0 when nobody exists, as
    GoTrue). Parameters in key order, as Go encodes them, so with what the clients send
    ``page`` comes first: supabase-js reads the number after the first ``=``."""

    def url(number: int) -> str:
        query = request.GET.copy()
        query["page"] = str(number)
        return f"<{request.path}?{urlencode(sorted(query.lists()), doseq=True)}>"

    links = [f'{url(page + 1)}; rel="next"'] if last > page else []
    return ", ".join([*links, f'{url(last)}; rel="last"'])


def _flag(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise Refused(400, "validation_failed", f"{name} must be true or false")
    return bool(value)


def _object(body: dict, name: str) -> dict | None:
    """A metadata object, or None when not sent. PostgreSQL's jsonb cannot hold ``\\u0000``,
    so it is refused here rather than failing the write."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refused(400, "validation_failed", f"{name} must be an object")
    if _has_nul(value):
        raise Refused(400, "validation_failed", f"{name} must not contain null characters")
    return value


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _refuse_unsupported(body: dict) -> None:
    for name in UNSUPPORTED:
        if body.get(name):
            raise Refused(400, "validation_failed", f"{name} is not supported")
    for name in ("role", "aud"):
        if body.get(name) not in (None, "", "authenticated"):
            raise Refused(400, "validation_failed", f"{name} can only be authenticated")


_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_NANOSECONDS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_NANOSECONDS["h"] = 60 * _NANOSECONDS["m"]
_MAX_NANOSECONDS = 2**63 - 1  # a Go Duration is an int64 of nanoseconds (about 292 years)


def go_duration(value: str) -> timedelta:
    """A Go duration string (``time.ParseDuration``: ``"24h"``, ``"1h30m"``, ``"-1.5h"``,
    ``"0"``), as GoTrue reads ``ban_duration``. Raises ValueError."""
    if value in ("0", "+0", "-0"):
        return timedelta(0)
    if not _DURATION.fullmatch(value):
        raise ValueError(f'time: invalid duration "{value}"')
    nanoseconds = sum(Fraction(number) * _NANOSECONDS[unit] for number, unit in _DURATION_PART.findall(value))
    if nanoseconds > _MAX_NANOSECONDS:
        raise ValueError(f'time: invalid duration "{value}"')
    sign = -1 if value.startswith("-") else 1
    return timedelta(microseconds=sign * (int(nanoseconds) // 1000))


_KEEP = object()  # ban_duration not sent: the ban stays as it is


def _ban_until(body: dict):
    """``ban_duration`` as GoTrue reads it: absent or ``""`` leaves the ban alone,
    ``"none"`` (or a zero duration) lifts it, a duration bans until now + duration."""
    value = text_field(body, "ban_duration")
    if value == "":
        return _KEEP
    if value == "none":
        return None
    try:
        duration = go_duration(value)
    except ValueError as exc:
        raise Refused(400, "validation_failed", f"invalid format for ban duration: {exc}") from None
    return timezone.now() + duration if duration else None


# --- the work ------------------------------------------------------------------------------


def _user(user_id: str, *, lock: bool = False) -> User:
    try:
        pk = uuid.UUID(user_id)
    except ValueError:
        raise Refused(404, "validation_failed", "user_id must be an UUID") from None
    people = User.objects.select_for_update() if lock else User.objects
    found = people.filter(pk=pk).first()
    if found is None:
        raise Refused(404, "user_not_found", "User not found")
    return found


@transaction.atomic
def _create(body: dict) -> User:
    """GoTrue's ``adminUserCreate``: through ``user_register`` (the profile, its sign-up
    credits), confirmed only when ``email_confirm`` says so; no password means sign-in
    by emailed link only."""
    _refuse_unsupported(body)
    if not text_field(body, "email"):
        raise Refused(400, "validation_failed", "Cannot create a user without either an email or phone")
    email = email_field(body)
    user_meta, app_meta = _object(body, "user_metadata") or {}, _object(body, "app_metadata")
    confirm, ban = _flag(body, "email_confirm"), _ban_until(body)
    if User.objects.filter(email__iexact=email).exists():
        raise Refused(422, "email_exists", EMAIL_EXISTS)
    password = text_field(body, "password") or None
    if password is not None:
        check_password_strength(password, User(email=email, raw_user_meta_data=user_meta))
    try:
        user = services.user_register(email=email, password=password, metadata=user_meta)
    except ValidationError:  # registered meanwhile
        raise Refused(422, "email_exists", EMAIL_EXISTS) from None
    user.raw_app_meta_data = merged_metadata({}, app_meta or {})
    user.email_confirmed_at = timezone.now() if confirm else None
    user.save(update_fields=["raw_app_meta_data", "email_confirmed_at"])
    if ban is not _KEEP:
        services.user_ban(user=user, until=ban)
    user.refresh_from_db()
    return user


@transaction.atomic
def _update(user_id: str, body: dict) -> User:
    """GoTrue's ``adminUserUpdate``. Everything is read and checked before anything is
    written. An admin's change of address needs no confirmation, so the new one counts
    as confirmed and a pending change by the person is dropped."""
    user = _user(user_id, lock=True)
    _refuse_unsupported(body)
    email = email_field(body) if text_field(body, "email") else None
    user_meta, app_meta = _object(body, "user_metadata"), _object(body, "app_metadata")
    confirm, ban = _flag(body, "email_confirm"), _ban_until(body)
    password = text_field(body, "password") if body.get("password") is not None else None
    changed = []
    if email is not None and email != user.email:
        if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
            raise Refused(422, "email_exists", EMAIL_EXISTS)
        user.email, user.email_change, user.email_change_confirm_status = email, "", 0
        user.email_change_sent_at, confirm = None, True
        changed += ["email", "email_change", "email_change_confirm_status", "email_change_sent_at"]
    if confirm:
        user.email_confirmed_at = timezone.now()
        changed.append("email_confirmed_at")
    if user_meta is not None:
        user.raw_user_meta_data = merged_metadata(user.raw_user_meta_data, user_meta)
        changed.append("raw_user_meta_data")
    if app_meta is not None:
        user.raw_app_meta_data = merged_metadata(user.raw_app_meta_data, app_meta)
        changed.append("raw_app_meta_data")
    if password is not None:
        check_password_strength(password, user)
    if changed:
        try:
            with transaction.atomic():  # a savepoint: the address taken meanwhile
                user.save(update_fields=changed)
        except IntegrityError:
            raise Refused(422, "email_exists", EMAIL_EXISTS) from None
    if password is not None:
        services.password_change(user=user, password=password, keep_session=None)  # signs out everywhere
    if ban is not _KEEP:
        services.user_ban(user=user, until=ban)
    user.refresh_from_db()
    return user


@transaction.atomic
def _delete(user_id: str, body: dict) -> None:
    """GoTrue's ``adminUserDelete``, hard deletion only (Velro keeps no ``deleted_at``).
    Deleted as the Django admin deletes a person (``delete()``, not a raw DELETE):
    Django's collector removes the profile, generations, projects and stacks and fires
    their ``post_delete`` receivers, so stored files go after the commit; the database
    cascades the rest (sessions, tokens, the ledger)."""
    user = _user(user_id, lock=True)
    if _flag(body, "should_soft_delete"):
        raise Refused(400, "validation_failed", "Soft deletion is not supported: send should_soft_delete false")
    user.delete()
