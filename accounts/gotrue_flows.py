"""``/auth/v1``'s sign-in flows, in GoTrue's paths, parameters, status codes and shapes
(../shared/reference/SUPABASE_AUTH.md, sections 2–7): ``token`` (password,
refresh_token, pkce), ``signup``, ``logout``, ``user`` (GET, PUT), ``recover``,
``verify`` (POST and the emailed link's GET), ``otp`` and ``resend``.

Every flow goes through the code ``/api/v1/auth/*`` uses: accounts/sessions.py for
sessions and refresh tokens, accounts/emails.py for emailed links and codes, Django's
password validators and hashers, the same rate limits. As GoTrue does, the public
endpoints ignore ``Authorization`` (a client sends its possibly expired access token
there) and answer ``recover``, ``otp`` and ``resend`` the same whether or not the email
is known.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import types
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import emails, services, sessions, throttles
from accounts.gotrue import bearer_user, gotrue_error, user_object, with_api_key
from accounts.models import FlowState, OneTimeToken, Session, User

FLOW_STATE_LIFETIME = timedelta(minutes=5)  # GoTrue's, from the code's issue to its exchange


# --- shared pieces -----------------------------------------------------------------------


class Refused(Exception):
    """A GoTrue error answer, raised from deep in a flow."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.response = gotrue_error(status, code, message, **extra)


def json_body(request) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_json", "Could not parse request body as JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_json", "Could not parse request body as JSON")
    return body


def text_field(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(400, "validation_failed", f"{name} must be a string")
    return value


def _limit(request, body: dict, *classes, code: str = "over_request_rate_limit") -> None:
    """The auth rate limits (accounts/throttles.py), for these plain views."""
    shim = types.SimpleNamespace(META=request.META, headers=request.headers, data=body)
    for cls in classes:
        throttle = cls()
        if not throttle.allow_request(shim, None):
            wait = throttle.wait()
            raise Refused(429, code, f"{throttle.message}. Try again in {wait} seconds.", retry_after=int(wait))


class _RefreshTokenThrottle(throttles.RefreshUserThrottle):
    field = "refresh_token"


def session_object(issued: sessions.Issued) -> dict:
    return {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "expires_at": issued.expires_at,
        "refresh_token": issued.refresh_token,
        "user": user_object(issued.user),
    }


def gotrue_view(*methods):
    """API key checked, GoTrue's errors for :class:`Refused`."""

    def decorate(view):
        def handle(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except Refused as refused:
                return refused.response

        handle.__name__ = view.__name__
        handle.__doc__ = view.__doc__
        return with_api_key(require_http_methods(list(methods))(handle))

    return decorate


def email_field(body: dict) -> str:
    email = User.objects.normalize_email(text_field(body, "email"))
    try:
        validate_email(email)
    except ValidationError:
        raise Refused(400, "validation_failed", "Unable to validate email address: invalid format") from None
    return email


def check_password_strength(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        reasons = ["length" if "short" in message else "characters" for message in exc.messages]
        message = " ".join(exc.messages)
        raise Refused(422, "weak_password", message, weak_password={"reasons": reasons, "message": message}) from None


def _flow_state(body: dict, user: User, method: str) -> FlowState | None:
    """A PKCE flow when the client sent a ``code_challenge`` (supabase-py does by
    default)."""
    challenge = text_field(body, "code_challenge")
    if not challenge:
        return None
    challenge_method = text_field(body, "code_challenge_method").lower() or "plain"
    if challenge_method not in ("s256", "plain") or not 43 <= len(challenge) <= 128:
        raise Refused(400, "validation_failed", "Code challenge is not valid")
    return FlowState.objects.create(
        user=user, code_challenge=challenge, code_challenge_method=challenge_method, authentication_method=method
    )


def _refuse_sign_in(user: User) -> None:
    if user.is_banned or not user.is_active:
        raise Refused(400, "user_banned", "User is banned")
    if settings.AUTH_EMAIL_CONFIRM and user.email_confirmed_at is None:
        raise Refused(400, "email_not_confirmed", "Email not confirmed")


# --- token -------------------------------------------------------------------------------


@gotrue_view("POST")
def token(request):
    """``POST token?grant_type=password|refresh_token|pkce``."""
    body = json_body(request)
    grant = request.GET.get("grant_type", "")
    if grant == "password":
        return JsonResponse(_password_grant(request, body))
    if grant == "refresh_token":
        return _refresh_grant(request, body)
    if grant == "pkce":
        return JsonResponse(_pkce_grant(request, body))
    raise Refused(400, "invalid_credentials", "unsupported_grant_type")


def _password_grant(request, body: dict) -> dict:
    _limit(request, body, throttles.LoginIPThrottle, throttles.LoginEmailThrottle)
    email, password = text_field(body, "email"), text_field(body, "password")
    if not email or not password:
        raise Refused(400, "invalid_credentials", "Invalid login credentials")
    user = authenticate(request, email=email, password=password)
    if user is None:
        raise Refused(400, "invalid_credentials", "Invalid login credentials")
    _refuse_sign_in(user)
    return session_object(sessions.session_start(user, request=request))


def _refresh_grant(request, body: dict):
    raw = text_field(body, "refresh_token")
    if not raw:
        return JsonResponse({"error": "invalid_request", "error_description": "refresh_token required"}, status=400)
    _limit(request, body, throttles.RefreshIPThrottle, _RefreshTokenThrottle)
    try:
        issued = sessions.session_refresh(raw, request=request)
    except sessions.SessionError as exc:
        raise Refused(400, exc.code, exc.message) from None
    return JsonResponse(session_object(issued))


def _challenge_of(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _pkce_grant(request, body: dict) -> dict:
    code, verifier = text_field(body, "auth_code"), text_field(body, "code_verifier")
    if not code or not verifier:
        raise Refused(400, "validation_failed", "invalid request: both auth code and code verifier should be non-empty")
    _limit(request, body, throttles.RefreshIPThrottle)
    flow = FlowState.objects.select_for_update().filter(auth_code_hash=_hash(code)).first()
    if flow is None:
        raise Refused(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
    if flow.auth_code_issued_at is None or flow.auth_code_issued_at + FLOW_STATE_LIFETIME < timezone.now():
        flow.delete()
        raise Refused(422, "flow_state_expired", "invalid flow state, flow state has expired")
    if not secrets.compare_digest(_challenge_of(verifier, flow.code_challenge_method), flow.code_challenge):
        raise Refused(400, "bad_code_verifier", "code challenge does not match previously saved code verifier")
    flow.delete()
    user = User.objects.get(pk=flow.user_id)
    _refuse_sign_in(user)
    method = Session.Method.RECOVERY if flow.authentication_method == "recovery" else Session.Method.OTP
    return session_object(sessions.session_start(user, method=method, request=request))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- signup, logout, user ------------------------------------------------------------------


@gotrue_view("POST")
def signup(request):
    """``POST signup``: a session when confirmation is off, else the User (an email with
    a link and a code is on its way)."""
    body = json_body(request)
    _limit(request, body, throttles.RegisterIPThrottle, throttles.RegisterEmailThrottle)
    email, password = email_field(body), text_field(body, "password")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise Refused(400, "validation_failed", "data must be an object")
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        if not settings.AUTH_EMAIL_CONFIRM:
            raise Refused(422, "user_already_exists", "User already registered")
        if existing.email_confirmed_at is None:  # a second try: the link again
            _send_confirmation(request, existing, body)
        return JsonResponse(_decoy_user(email, data))  # nobody learns who is registered
    check_password_strength(password, User(email=email, raw_user_meta_data=data))
    user = services.user_register(email=email, password=password, metadata=data)
    if not settings.AUTH_EMAIL_CONFIRM:
        User.objects.filter(pk=user.pk).update(email_confirmed_at=timezone.now())
        user.refresh_from_db()
        return JsonResponse(session_object(sessions.session_start(user, request=request)))
    _send_confirmation(request, user, body)
    user.refresh_from_db()
    return JsonResponse(user_object(user))


def _send_confirmation(request, user: User, body: dict) -> None:
    flow = _flow_state(body, user, "signup")
    emails.send_confirmation(request, user, redirect_to=request.GET.get("redirect_to"), flow_state=flow)


def _decoy_user(email: str, data: dict) -> dict:
    now = timezone.now()
    decoy = User(
        email=email, raw_user_meta_data=data, created_at=now, updated_at=now, confirmation_sent_at=now, email_change=""
    )
    body = user_object(decoy)
    body["identities"] = []
    return body


@gotrue_view("POST")
def logout(request):
    """``POST logout?scope=global|local|others`` (global by default, as GoTrue): 204."""
    user, session_id, refused = bearer_user(request)
    if refused:
        return refused
    scope = request.GET.get("scope", "global")
    if scope not in ("global", "local", "others"):
        raise Refused(400, "validation_failed", "Unsupported logout scope")
    sessions.logout(user.pk, session_id, scope)
    return HttpResponse(status=204)


@gotrue_view("GET", "PUT")
def user_view(request):
    """``GET user``: the bearer's User. ``PUT user``: change ``data`` (merged key by key,
    ``null`` deletes), ``password`` (signs the other sessions out) or ``email`` (a
    confirmation to both addresses; the change happens when both confirmed)."""
    user, session_id, refused = bearer_user(request)
    if refused:
        return refused
    if request.method == "PUT":
        user = _update_user(request, user, session_id, json_body(request))
    return JsonResponse(user_object(user))


def merged_metadata(current: dict | None, updates: dict) -> dict:
    """GoTrue's metadata update: key by key, and ``null`` deletes the key."""
    merged = dict(current or {})
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _update_user(request, user: User, session_id, body: dict) -> User:
    data = body.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise Refused(400, "validation_failed", "data must be an object")
        user.raw_user_meta_data = merged_metadata(user.raw_user_meta_data, data)
        user.save(update_fields=["raw_user_meta_data"])
    if body.get("password") is not None:
        password = text_field(body, "password")
        if user.has_usable_password() and user.check_password(password):
            raise Refused(422, "same_password", "New password should be different from the old password.")
        check_password_strength(password, user)
        services.password_change(user=user, password=password, keep_session=session_id)
    if body.get("email") is not None:
        _change_email(request, user, email_field(body), body)
    user.refresh_from_db()
    return user


def _change_email(request, user: User, new_email: str, body: dict) -> None:
    if new_email == user.email:
        return
    if User.objects.filter(email__iexact=new_email).exclude(pk=user.pk).exists():
        raise Refused(422, "email_exists", "A user with this email address has already been registered")
    _email_limits(request, {"email": user.email})
    now = timezone.now()
    User.objects.filter(pk=user.pk).update(
        email_change=new_email, email_change_sent_at=now, email_change_confirm_status=0
    )
    flow = _flow_state(body, user, "email_change")
    context = {"old_email": user.email, "new_email": new_email}
    redirect_to = request.GET.get("redirect_to")
    for to, token_type in (
        (new_email, OneTimeToken.Type.EMAIL_CHANGE_NEW),
        (user.email, OneTimeToken.Type.EMAIL_CHANGE_CURRENT),
    ):
        emails.send(request, user, "email_change", token_type=token_type, to=to, redirect_to=redirect_to,
                    flow_state=flow, context=context)  # fmt: skip


# --- emails: recover, otp, resend --------------------------------------------------------


def _email_limits(request, body: dict) -> None:
    _limit(request, body, throttles.EmailSendIPThrottle, throttles.EmailSendThrottle, code="over_email_send_rate_limit")


@gotrue_view("POST")
def recover(request):
    """``POST recover``: a recovery link and code, if the address is known. ``{}``
    either way."""
    body = json_body(request)
    email = email_field(body)
    _email_limits(request, body)
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is not None:
        flow = _flow_state(body, user, "recovery")
        emails.send(request, user, "recovery", token_type=OneTimeToken.Type.RECOVERY, to=user.email,
                    redirect_to=request.GET.get("redirect_to"), flow_state=flow)  # fmt: skip
        User.objects.filter(pk=user.pk).update(recovery_sent_at=timezone.now())
    return JsonResponse({})


@gotrue_view("POST")
def otp(request):
    """``POST otp``: a magic link and code to sign in; with ``create_user`` (the default)
    an unknown address gets an account without a password and a confirmation link."""
    body = json_body(request)
    email = email_field(body)
    _email_limits(request, body)
    user = User.objects.filter(email__iexact=email).first()
    redirect_to = request.GET.get("redirect_to")
    if user is None:
        if body.get("create_user", True) is False:
            raise Refused(422, "otp_disabled", "Signups not allowed for otp")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        user = services.user_register(email=email, password=None, metadata=data)
        _send_confirmation(request, user, body)
    elif user.is_active and not user.is_banned:
        flow = _flow_state(body, user, "magiclink")
        emails.send(request, user, "magiclink", token_type=OneTimeToken.Type.RECOVERY, to=user.email,
                    redirect_to=redirect_to, flow_state=flow)  # fmt: skip
    return JsonResponse({})


@gotrue_view("POST")
def resend(request):
    """``POST resend``: the sign-up confirmation, or a pending change of address, again."""
    body = json_body(request)
    kind = text_field(body, "type")
    if kind not in ("signup", "email_change"):
        raise Refused(400, "validation_failed", "Missing one of these types: signup, email_change")
    email = email_field(body)
    _email_limits(request, body)
    if kind == "signup":
        user = User.objects.filter(email__iexact=email, email_confirmed_at__isnull=True).first()
        if user is not None:
            _send_confirmation(request, user, body)
    else:
        user = User.objects.filter(email_change__iexact=email).first()
        if user is not None:
            _change_email(request, user, user.email_change, body)
    return JsonResponse({})


# --- verify ------------------------------------------------------------------------------


@gotrue_view("POST")
def verify_post(request):
    """``POST verify`` ``{type, email, token}`` (the code) or ``{type, token_hash}``:
    a Session; the first of the two confirmations of a change of address answers
    ``{"msg", "code"}``."""
    body = json_body(request)
    _limit(request, body, throttles.VerifyIPThrottle, throttles.VerifyEmailThrottle)
    kind = text_field(body, "type")
    if body.get("token_hash"):
        used = emails.consume(kind, token_hash=text_field(body, "token_hash"))
    else:
        used = emails.consume(kind, email=text_field(body, "email"), otp=text_field(body, "token"))
    if used is None:
        raise Refused(403, "otp_expired", "Token has expired or is invalid")
    outcome = _verified(request, used)
    if outcome is None:
        return JsonResponse({"msg": FIRST_OF_TWO, "code": "200"})  # a string, as the clients test it
    return JsonResponse(session_object(outcome))


FIRST_OF_TWO = "Confirmation link accepted. Please proceed to confirm link sent to the other email"


@csrf_exempt  # no cookie authenticates anything here
def verify(request):
    """``verify``: POST with the code or token hash, GET from the emailed link."""
    return verify_link(request) if request.method == "GET" else verify_post(request)  # POST: the key checked


@require_http_methods(["GET"])
def verify_link(request):
    """``GET verify?token=&type=&redirect_to=``: the emailed link. 303 to ``redirect_to``
    with the session in the fragment (implicit flow) or ``?code=`` (PKCE). A browser
    opens it, with no API key: as Supabase's gateway, this one path needs none."""
    target = emails.redirect_target(request.GET.get("redirect_to"))
    token_hash = request.GET.get("token", "")
    pkce = token_hash.startswith(emails.PKCE_PREFIX)
    try:
        _limit(request, {}, throttles.VerifyIPThrottle)
        used = emails.consume(request.GET.get("type", ""), token_hash=token_hash)
        if used is None:
            raise Refused(403, "otp_expired", "Email link is invalid or has expired")
        if pkce and used.flow_state_id is not None:
            return _redirect_with_code(request, target, used)
        outcome = _verified(request, used)
    except Refused as refused:
        error = json.loads(refused.response.content)
        params = urlencode(
            {"error": "access_denied", "error_code": error["code"], "error_description": error["message"], "sb": ""}
        )
        return _see_other(f"{target}{'?' + params if pkce else ''}#{params}")
    if outcome is None:
        return _see_other(f"{target}#{urlencode({'message': FIRST_OF_TWO, 'sb': ''})}")
    fragment = urlencode(
        {
            "access_token": outcome.access_token,
            "expires_at": outcome.expires_at,
            "expires_in": outcome.expires_in,
            "refresh_token": outcome.refresh_token,
            "token_type": "bearer",
            "type": request.GET.get("type", ""),
            "sb": "",
        }
    )
    return _see_other(f"{target}#{fragment}")


def _see_other(url: str) -> HttpResponse:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _redirect_with_code(request, target: str, used: OneTimeToken) -> HttpResponse:
    """PKCE: the link's work is done (address confirmed, …) and the client gets a code to
    trade, with its verifier, for the session."""
    user = _apply(used)
    if user is None:  # first of two confirmations of a change of address
        return _see_other(f"{target}#{urlencode({'message': FIRST_OF_TWO, 'sb': ''})}")
    code = secrets.token_urlsafe(32)
    FlowState.objects.filter(pk=used.flow_state_id).update(
        auth_code_hash=_hash(code), auth_code_issued_at=timezone.now()
    )
    separator = "&" if "?" in target else "?"
    return _see_other(f"{target}{separator}{urlencode({'code': code})}")


def _verified(request, used: OneTimeToken) -> sessions.Issued | None:
    """Apply what the token confirms and sign the person in; None for the first of two
    confirmations of a change of address."""
    user = _apply(used)
    if user is None:
        return None
    method = Session.Method.RECOVERY if used.token_type == OneTimeToken.Type.RECOVERY else Session.Method.OTP
    return sessions.session_start(user, method=method, request=request)


@transaction.atomic
def _apply(used: OneTimeToken) -> User | None:
    user = User.objects.select_for_update().get(pk=used.user_id)
    if user.is_banned or not user.is_active:
        raise Refused(403, "user_banned", "User is banned")
    now = timezone.now()
    if used.token_type in (OneTimeToken.Type.EMAIL_CHANGE_NEW, OneTimeToken.Type.EMAIL_CHANGE_CURRENT):
        if not user.email_change or used.relates_to not in (user.email, user.email_change):
            raise Refused(403, "otp_expired", "Token has expired or is invalid")
        if user.email_change_confirm_status == 0:
            User.objects.filter(pk=user.pk).update(email_change_confirm_status=1)
            return None
        if User.objects.filter(email__iexact=user.email_change).exclude(pk=user.pk).exists():
            raise Refused(422, "email_exists", "A user with this email address has already been registered")
        user.email, user.email_change, user.email_change_confirm_status = user.email_change, "", 0
        user.email_confirmed_at = user.email_confirmed_at or now
        user.save(update_fields=["email", "email_change", "email_change_confirm_status", "email_confirmed_at"])
        OneTimeToken.objects.filter(
            user=user, token_type__in=[OneTimeToken.Type.EMAIL_CHANGE_NEW, OneTimeToken.Type.EMAIL_CHANGE_CURRENT]
        ).delete()
        return user
    # A sign-up confirmation, a recovery or a magic link all prove the address.
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now
        user.save(update_fields=["email_confirmed_at"])
    return user
