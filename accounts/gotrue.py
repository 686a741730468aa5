"""``/auth/v1``: Supabase Auth's (GoTrue's) HTTP surface, so a front end written against
``supabase-js`` / ``supabase-py`` talks to Velro by changing only its URL and key
(issue 16; ../shared/reference/SUPABASE_AUTH.md has what the clients send and parse).

This first part is the frame every endpoint shares:

* the API key: as Supabase's gateway does, every request carries ``apikey`` (or, with
  no ``apikey``, ``Authorization: Bearer <key>``) holding this deployment's ``anon`` or
  ``service_role`` key (accounts/apikeys.py); anything else is a 401 before a view runs;
* errors in GoTrue's shape for clients that send ``X-Supabase-Api-Version``:
  ``{"code": "<error_code>", "message": "…"}`` with that header echoed, plus the legacy
  ``error_code``/``msg`` keys older clients read;
* ``GET health``, ``GET settings`` and ``GET .well-known/jwks.json`` (the public keys
  that verify access tokens; an empty set with HS256, as GoTrue answers);
* ``GET user``: the bearer's User object, in GoTrue's shape (``user_object``, which the
  sessions of the token endpoints will carry too).

Plain Django views: GoTrue's shapes are not the ``/api/v1`` ones. ``GET user`` reads the
one row its verified token names, as ``/api/v1``'s authentication does, and nothing else.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC

from django.conf import settings as django_settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from rest_framework_simplejwt.exceptions import TokenError

from accounts.apikeys import api_key_role
from accounts.models import Session, User
from accounts.tokens import AccessToken, app_metadata
from velro import jwt_keys

API_VERSION = "2024-01-01"  # the X-Supabase-Api-Version whose error shape this serves


def gotrue_error(status: int, code: str, message: str, **extra) -> JsonResponse:
    body = {"code": code, "message": message, "error_code": code, "msg": message, **extra}
    return JsonResponse(body, status=status, headers={"X-Supabase-Api-Version": API_VERSION})


def bearer_token(request) -> str:
    """The token of ``Authorization: Bearer <token>``, or ``""``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def presented_key(request) -> str:
    """The API key a client sent: ``apikey``, else the bearer token (which Supabase's
    clients set to the key until someone signs in)."""
    return request.headers.get("apikey", "") or bearer_token(request)


def with_api_key(view):
    """The gateway's check: no key is a 401 ``No API key found in request``, a key that
    is not this deployment's ``anon`` or ``service_role`` a 401 ``Invalid API key``. The
    role is ``request.api_key_role``."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        key = presented_key(request)
        if not key:
            return gotrue_error(401, "no_api_key", "No API key found in request", hint="Send the apikey header.")
        role = api_key_role(key)
        if role is None:
            return gotrue_error(401, "invalid_api_key", "Invalid API key", hint="Double check the apikey header.")
        request.api_key_role = role
        response = view(request, *args, **kwargs)
        response.headers.setdefault("X-Supabase-Api-Version", API_VERSION)
        return response

    return csrf_exempt(wrapper)


@with_api_key
@require_GET
def health(request):
    return JsonResponse(
        {"version": "velro", "name": "GoTrue", "description": "GoTrue is a user registration and authentication API"}
    )


@with_api_key
@require_GET
def settings_view(request):
    """What sign-in methods exist: email and password only (no phone, OAuth or SAML)."""
    external = {"email": True, "phone": False, "anonymous_users": False}
    external.update(dict.fromkeys(("apple", "azure", "github", "gitlab", "google", "discord", "facebook"), False))
    return JsonResponse(
        {
            "external": external,
            "disable_signup": False,
            "mailer_autoconfirm": not django_settings.AUTH_EMAIL_CONFIRM,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
        }
    )


@require_GET
def jwks(request):
    """The public keys that verify access tokens (velro/jwt_keys.py), signing key first,
    each with its ``kid``: none when they are signed with the shared HS256 secret (GoTrue
    answers the same). Public, like GoTrue's; caches may keep it 10 minutes, which is
    why a new key is published before it signs (README)."""
    return JsonResponse(jwt_keys.key_set().jwks(), headers={"Cache-Control": "public, max-age=600"})


# --- the User object -------------------------------------------------------------------


def _timestamp(value) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def user_object(user) -> dict:
    """``user`` as GoTrue's User object (what ``GET user`` and every session carry).
    Null ``*_at`` fields are left out, as GoTrue does; ``phone`` is ``""``."""
    confirmed = _timestamp(user.email_confirmed_at)
    created, updated, signed_in = _timestamp(user.created_at), _timestamp(user.updated_at), _timestamp(user.last_login)
    identity = {
        "identity_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"velro:email-identity:{user.pk}")),
        "id": str(user.pk),
        "user_id": str(user.pk),
        "provider": "email",
        "email": user.email,
        "identity_data": {
            "sub": str(user.pk),
            "email": user.email,
            "email_verified": confirmed is not None,
            "phone_verified": False,
        },
        "last_sign_in_at": signed_in,
        "created_at": created,
        "updated_at": updated,
    }
    body = {
        "id": str(user.pk),
        "aud": "authenticated",
        "role": "authenticated",
        "email": user.email,
        "email_confirmed_at": confirmed,
        "phone": "",
        "confirmed_at": confirmed,
        "last_sign_in_at": signed_in,
        "confirmation_sent_at": _timestamp(user.confirmation_sent_at),
        "recovery_sent_at": _timestamp(user.recovery_sent_at),
        "new_email": user.email_change or None,
        "email_change_sent_at": _timestamp(user.email_change_sent_at) if user.email_change else None,
        "banned_until": _timestamp(user.banned_until) if user.is_banned else None,
        "app_metadata": app_metadata(user),
        "user_metadata": dict(user.raw_user_meta_data or {}),
        "identities": [{key: value for key, value in identity.items() if value is not None}],
        "created_at": created,
        "updated_at": updated,
        "is_anonymous": False,
    }
    return {key: value for key, value in body.items() if value is not None}


def bearer_user(request):
    """``(user, session_id, None)`` for the person whose access token is the bearer, or
    ``(None, None, refusal)``: no bearer 401 ``no_authorization``; an API key (no
    ``sub``) or a token that does not verify 403 ``bad_jwt``; a deleted person 403
    ``user_not_found``; an ended session 403 ``session_not_found``; a deactivated or
    banned person 403 ``user_banned``."""
    token = bearer_token(request)
    if not token:
        return None, None, gotrue_error(401, "no_authorization", "This endpoint requires a Bearer token")
    if api_key_role(token) is not None:
        return None, None, gotrue_error(403, "bad_jwt", "invalid claim: missing sub claim")
    try:
        claims = AccessToken(token)
        user_id, session_id = uuid.UUID(str(claims.get("sub"))), uuid.UUID(str(claims.get("session_id")))
    except (TokenError, ValueError) as exc:
        return None, None, gotrue_error(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return None, None, gotrue_error(403, "user_not_found", "User from sub claim in JWT does not exist")
    if not Session.objects.filter(pk=session_id, user=user).exists():
        return None, None, gotrue_error(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    if not user.is_active or user.is_banned:
        return None, None, gotrue_error(403, "user_banned", "User is banned")
    return user, session_id, None


@with_api_key
def not_found(request, path=""):
    return gotrue_error(404, "not_found", "Not found")
