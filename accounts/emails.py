"""Links and codes sent by email: sign-up confirmation, recovery, magic link, change of
address (issue 16), as GoTrue makes them.

An email carries a six-digit code and a link ``<SUPABASE_URL>/auth/v1/verify?token=
<token_hash>&type=<type>&redirect_to=<url>``, where ``token_hash`` is GoTrue's
``sha224(email + code)`` (``pkce_``-prefixed when the client started a PKCE flow).
``auth.one_time_tokens`` keeps only a SHA-256 of the ``token_hash``, one per person and
type; a token works once (it is deleted when used) and for ``MAILER_OTP_EXP`` seconds.
The email is rendered now and sent by the task queue after the transaction commits.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import FlowState, OneTimeToken, User
from velro.tasks import email_on_commit

PKCE_PREFIX = "pkce_"
Type = OneTimeToken.Type

# What each verify ``type`` accepts, in GoTrue's order ("email" tries the confirmation
# first, then recovery / magic link).
TYPES_FOR_VERIFY = {
    "signup": (Type.CONFIRMATION,),
    "invite": (Type.CONFIRMATION,),
    "recovery": (Type.RECOVERY,),
    "magiclink": (Type.RECOVERY,),
    "email": (Type.CONFIRMATION, Type.RECOVERY),
    "email_change": (Type.EMAIL_CHANGE_NEW, Type.EMAIL_CHANGE_CURRENT),
}


def _token_hash(email: str, otp: str) -> str:
    return hashlib.sha224((email + otp).encode()).hexdigest()


def _stored(token_hash: str) -> str:
    return hashlib.sha256(token_hash.removeprefix(PKCE_PREFIX).encode()).hexdigest()


def redirect_target(requested: str | None) -> str:
    """``redirect_to`` if the allow-list has it, else the site URL (as GoTrue does)."""
    if requested:
        allowed = [settings.AUTH_SITE_URL, *settings.AUTH_REDIRECT_URLS]
        for pattern in allowed:
            if requested == pattern or fnmatch.fnmatchcase(requested, pattern):
                return requested
            if pattern.endswith("/") and requested.startswith(pattern):
                return requested
    return settings.AUTH_SITE_URL


def base_url(request) -> str:
    """``<SUPABASE_URL>/auth/v1``, or this request's host's when the URL is not set."""
    root = settings.SUPABASE_URL.rstrip("/") or request.build_absolute_uri("/").rstrip("/")
    return f"{root}/auth/v1"


def send(
    request,
    user: User,
    kind: str,
    *,
    token_type: str,
    to: str,
    redirect_to: str | None = None,
    flow_state: FlowState | None = None,
    context: dict | None = None,
) -> None:
    """Issue a token of ``token_type`` for ``user`` (replacing the last one of that type)
    and email it to ``to`` with the ``kind`` template (signup, recovery, magiclink,
    email_change)."""
    otp = f"{secrets.randbelow(10**6):06d}"
    token_hash = _token_hash(to, otp)
    OneTimeToken.objects.filter(user=user, token_type=token_type).delete()
    OneTimeToken.objects.create(
        user=user, token_type=token_type, token_hash=_stored(token_hash), relates_to=to, flow_state=flow_state
    )
    link_token = PKCE_PREFIX + token_hash if flow_state is not None else token_hash
    verify_type = "email_change" if kind == "email_change" else kind
    query = urlencode({"token": link_token, "type": verify_type, "redirect_to": redirect_target(redirect_to)})
    email_on_commit(
        to=to,
        template=f"accounts/email/{kind}",
        context={
            "email": to,
            "otp": otp,
            "link": f"{base_url(request)}/verify?{query}",
            "minutes": settings.MAILER_OTP_EXP // 60,
            **(context or {}),
        },
    )


def send_confirmation(request, user: User, *, redirect_to: str | None = None, flow_state=None) -> None:
    """The sign-up confirmation (link and code) to ``user``'s address, and GoTrue's
    ``confirmation_sent_at`` stamped: every path that asks a person to confirm goes
    through here."""
    send(
        request,
        user,
        "signup",
        token_type=Type.CONFIRMATION,
        to=user.email,
        redirect_to=redirect_to,
        flow_state=flow_state,
    )
    User.objects.filter(pk=user.pk).update(confirmation_sent_at=timezone.now())


@transaction.atomic
def consume(verify_type: str, *, token_hash: str | None = None, email: str | None = None, otp: str | None = None):
    """The token a link or a code stands for, used up; None when it is unknown, of
    another type, or expired (an expired one is deleted too)."""
    types = TYPES_FOR_VERIFY.get(verify_type)
    if not types:
        return None
    if token_hash is None:
        if not (email and otp):
            return None
        token_hash = _token_hash(User.objects.normalize_email(email), str(otp).strip())
    token = (
        OneTimeToken.objects.select_for_update()
        .filter(token_hash=_stored(str(token_hash)), token_type__in=types)
        .first()
    )
    if token is None:
        return None
    OneTimeToken.objects.filter(pk=token.pk).delete()
    if token.created_at + timedelta(seconds=settings.MAILER_OTP_EXP) < timezone.now():
        return None
    return token
