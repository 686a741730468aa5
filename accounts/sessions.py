"""Sessions and refresh tokens, as GoTrue keeps them (issue 16).

One code path for both surfaces: ``/api/v1/auth/*`` and ``/auth/v1`` sign in with
:func:`session_start`, refresh with :func:`session_refresh`, sign out with
:func:`sessions_end`. A session is a row in ``auth.sessions``; every access token names
it (``session_id``) and works only while the row exists.

Refresh tokens rotate on every use (GoTrue's ``RefreshTokenGrant``, the reference note's
section 6): the token used is revoked and a child issued. A revoked token presented
again

* is the parent of the session's active token: the active token is given again (a
  client that lost the last answer);
* was revoked less than ``AUTH_REFRESH_TOKEN_REUSE_INTERVAL`` seconds ago: a new child
  is issued (tabs refreshing at once);
* otherwise someone replays a stolen token: the whole session ends (its row is deleted,
  so its access tokens stop too) and the answer is ``refresh_token_already_used``.

What a client holds is ``<public half><HMAC of it>``: the table keeps only the public
half, so a copy of it signs nobody in, and the active token can still be re-issued.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import RefreshToken, Session, User
from accounts.throttles import client_ip
from accounts.tokens import AccessToken
from velro import metrics

PUBLIC_LENGTH = 12  # GoTrue's v1 tokens are 12 characters too
MAC_LENGTH = 22
_MAC_SALT = "velro.accounts.refresh-token"


class SessionError(Exception):
    """A refresh that cannot go on; ``code`` is GoTrue's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Issued:
    """What a sign-in or refresh hands out."""

    user: User
    session: Session
    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: int


def _mac(public: str) -> str:
    digest = salted_hmac(_MAC_SALT, public, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_LENGTH]


def _client_token(public: str) -> str:
    return public + _mac(public)


def _public_half(raw) -> str | None:
    """The public half of a token a client presented, or None when it is not one we
    issued (wrong shape or HMAC): checked before the database is asked."""
    if not isinstance(raw, str) or len(raw) != PUBLIC_LENGTH + MAC_LENGTH or not raw.isascii():
        return None
    public, mac = raw[:PUBLIC_LENGTH], raw[PUBLIC_LENGTH:]
    return public if constant_time_compare(mac, _mac(public)) else None


def _new_token(session: Session, parent: str = "") -> RefreshToken:
    return RefreshToken.objects.create(
        session=session, token=secrets.token_urlsafe(PUBLIC_LENGTH * 3 // 4), parent=parent
    )


def _request_details(request) -> dict:
    if request is None:
        return {}
    return {"user_agent": request.META.get("HTTP_USER_AGENT", "")[:512], "ip": client_ip(request)}


def access_token_for(user: User, session: Session) -> tuple[str, int]:
    """An access token for ``user`` in ``session`` with GoTrue's claims, and its expiry."""
    token = AccessToken.for_user(user)
    token["session_id"] = str(session.pk)
    token["aal"] = session.aal
    token["amr"] = [{"method": session.method, "timestamp": int(session.created_at.timestamp())}]
    return str(token), int(token["exp"])


def _issue(user: User, session: Session, refresh: RefreshToken) -> Issued:
    access, expires_at = access_token_for(user, session)
    return Issued(
        user=user,
        session=session,
        access_token=access,
        refresh_token=_client_token(refresh.token),
        expires_in=int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
        expires_at=expires_at,
    )


@transaction.atomic
def session_start(user: User, *, method: str = Session.Method.PASSWORD, request=None) -> Issued:
    """Sign ``user`` in: a new session and its first refresh token. Sets
    ``last_sign_in_at``."""
    now = timezone.now()
    session = Session.objects.create(user=user, method=method, refreshed_at=now, **_request_details(request))
    metrics.count_on_commit(metrics.SIGNINS.labels(session.method))
    User.objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now
    return _issue(user, session, _new_token(session))


def _expired(session: Session, now) -> bool:
    idle = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    return session.last_used_at + idle < now


def session_refresh(raw, *, request=None) -> Issued:
    """Trade a refresh token for a new access token and refresh token (rotation, with
    GoTrue's reuse rules). Raises :class:`SessionError`, after committing what the
    refusal ended (an expired session, a session whose token was replayed)."""
    outcome = _refresh(raw, request)
    if isinstance(outcome, SessionError):
        raise outcome
    return outcome


@transaction.atomic
def _refresh(raw, request) -> Issued | SessionError:
    public = _public_half(raw)
    token = RefreshToken.objects.filter(token=public).first() if public else None
    if token is None:
        return SessionError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    # One refresh of a session at a time: the lock orders tabs that refresh together.
    session = Session.objects.select_for_update().filter(pk=token.session_id).first()
    if session is None:
        return SessionError("session_not_found", "Invalid Refresh Token: Session Not Found")
    token.refresh_from_db()  # as it is now that the session is ours
    user, now = User.objects.get(pk=session.user_id), timezone.now()
    if not user.is_active or user.is_banned:  # a ban ends the sessions too; this is belt and braces
        return SessionError("user_banned", "Invalid Refresh Token: User Banned")
    if _expired(session, now):
        session.delete()
        return SessionError("session_expired", "Invalid Refresh Token: Session Expired")
    if token.revoked:
        active = session.refresh_tokens.filter(revoked=False).order_by("-id").first()
        if active is not None and active.parent == token.token:
            return _issue(user, session, active)  # the answer the client lost, again
        reuse = timedelta(seconds=settings.AUTH_REFRESH_TOKEN_REUSE_INTERVAL)
        if now > token.updated_at + reuse:
            session.delete()  # a stolen token replayed: the whole session ends
            return SessionError("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    else:
        RefreshToken.objects.filter(pk=token.pk).update(revoked=True, updated_at=now)
    child = _new_token(session, parent=token.token)
    details = _request_details(request)
    Session.objects.filter(pk=session.pk).update(refreshed_at=now, updated_at=now, **details)
    session.refreshed_at = now
    return _issue(user, session, child)


def session_of_token(raw) -> Session | None:
    """The session a refresh token belongs to (for rate limits), without using it."""
    public = _public_half(raw)
    if public is None:
        return None
    return Session.objects.filter(refresh_tokens__token=public).first()


def sessions_end(user_id, *, only=None, keep=None) -> int:
    """End sessions of a person: ``only`` that one, all but ``keep``, or all. Their
    refresh tokens go with them and their access tokens stop working. Returns how many
    ended."""
    sessions = Session.objects.filter(user_id=user_id)
    if only is not None:
        sessions = sessions.filter(pk=only)
    if keep is not None:
        sessions = sessions.exclude(pk=keep)
    deleted, _ = sessions.delete()  # one DELETE: the database cascades to the tokens
    return deleted


def logout(user_id, session_id, scope: str) -> int:
    """Sign out as GoTrue's ``logout?scope=``: ``local`` (this session), ``others`` or
    ``global``."""
    if scope == "global":
        return sessions_end(user_id)
    if scope == "others":
        return sessions_end(user_id, keep=session_id)
    return sessions_end(user_id, only=session_id)
