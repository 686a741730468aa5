"""Supabase's own Python client, unchanged, against /auth/v1 of the app served on
loopback (issue 16): ``create_client(url, anon_key)``, then the calls a front end makes.
Emails arrive at a real SMTP server (aiosmtpd) through the task queue's worker."""

import re

import httpx
import pytest
from django.core.cache import cache
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from accounts.apikeys import api_key
from accounts.models import Session, User

PASSWORD = "lantern-harbour-quiet-88"
NEW_PASSWORD = "copper-meadow-window-42"


@pytest.fixture
def app(live_server, settings, worker, smtp):
    settings.PASSWORD_BREACH_CHECK = False  # never the network (accounts/passwords.py)
    settings.AUTH_EMAIL_CONFIRM = False
    settings.AUTH_REDIRECT_URLS = ["http://front.test/**"]
    cache.clear()  # the rate limits' counters are committed rows: start and leave none
    yield live_server
    cache.clear()


def client(app):
    options = ClientOptions(auto_refresh_token=False, persist_session=True)
    return create_client(app.url, api_key("anon"), options=options)


def me(app, access_token):
    return httpx.get(f"{app.url}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})


def code_in(message) -> str:
    return re.search(r"code: (\d{6})", message.get_body(("plain",)).get_content()).group(1)


def link_in(message) -> str:
    return re.search(r"(http\S+/auth/v1/verify\?\S+)", message.get_body(("plain",)).get_content()).group(1)


def inbox_for(smtp, worker, address: str) -> list:
    worker()  # the task queue sends what the requests asked for
    return [item["message"] for item in smtp.inbox if address in item["to"]]


def test_sign_up_in_refresh_update_and_out(app):
    supabase = client(app)
    signed_up = supabase.auth.sign_up(
        {"email": "maya@example.com", "password": PASSWORD, "options": {"data": {"full_name": "Maya Lin"}}}
    )
    assert signed_up.session is not None and signed_up.user.email == "maya@example.com"
    assert signed_up.user.user_metadata == {"full_name": "Maya Lin"}
    assert me(app, signed_up.session.access_token).json()["full_name"] == "Maya Lin"

    signed_in = supabase.auth.sign_in_with_password({"email": "maya@example.com", "password": PASSWORD})
    assert supabase.auth.get_user().user.id == signed_in.user.id
    updated = supabase.auth.update_user({"data": {"plan": "studio", "full_name": None}})
    assert updated.user.user_metadata == {"plan": "studio"}

    refreshed = supabase.auth.refresh_session()
    assert refreshed.session.refresh_token != signed_in.session.refresh_token
    assert me(app, refreshed.session.access_token).status_code == 200

    supabase.auth.sign_out()  # scope "global": both sessions (sign-up's and sign-in's)
    assert me(app, refreshed.session.access_token).json()["code"] == "session_not_found"
    assert Session.objects.count() == 0


def test_wrong_password_and_taken_email_are_gotrue_errors(app):
    supabase = client(app)
    supabase.auth.sign_up({"email": "maya@example.com", "password": PASSWORD})
    with pytest.raises(AuthApiError) as wrong:
        supabase.auth.sign_in_with_password({"email": "maya@example.com", "password": "not-it-at-all"})
    assert (wrong.value.status, wrong.value.code) == (400, "invalid_credentials")
    with pytest.raises(AuthApiError) as taken:
        supabase.auth.sign_up({"email": "Maya@Example.com", "password": PASSWORD})
    assert (taken.value.status, taken.value.code) == (422, "user_already_exists")
    with pytest.raises(AuthWeakPasswordError) as weak:
        supabase.auth.sign_up({"email": "new@example.com", "password": "123"})
    assert weak.value.code == "weak_password" and "length" in weak.value.reasons


def test_a_stolen_refresh_token_replayed_after_rotation_ends_the_session(app, settings):
    settings.AUTH_REFRESH_TOKEN_REUSE_INTERVAL = 0
    supabase = client(app)
    session = supabase.auth.sign_up({"email": "maya@example.com", "password": PASSWORD}).session
    stolen = session.refresh_token
    supabase.auth.refresh_session()
    latest = supabase.auth.refresh_session().session
    thief = client(app)
    with pytest.raises(AuthApiError) as replay:
        thief.auth.refresh_session(stolen)
    assert replay.value.code == "refresh_token_already_used"
    assert me(app, latest.access_token).json()["code"] == "session_not_found"
    with pytest.raises(AuthApiError):
        supabase.auth.refresh_session(latest.refresh_token)


def test_recovering_a_password_with_the_emailed_code(app, smtp, worker):
    supabase = client(app)
    old = supabase.auth.sign_up({"email": "maya@example.com", "password": PASSWORD}).session
    supabase.auth.reset_password_for_email("maya@example.com", {"redirect_to": "http://front.test/reset"})
    supabase.auth.reset_password_for_email("nobody@example.com")  # the same answer, no email
    (message,) = inbox_for(smtp, worker, "maya@example.com")
    assert message["Subject"] == "Reset your Velro password"
    assert inbox_for(smtp, worker, "nobody@example.com") == []
    assert "redirect_to=http%3A%2F%2Ffront.test%2Freset" in link_in(message)

    device = client(app)
    recovered = device.auth.verify_otp({"email": "maya@example.com", "token": code_in(message), "type": "recovery"})
    assert recovered.session is not None
    device.auth.update_user({"password": NEW_PASSWORD})
    # The other sessions are signed out; the new password works, the old one not.
    assert me(app, old.access_token).json()["code"] == "session_not_found"
    assert client(app).auth.sign_in_with_password({"email": "maya@example.com", "password": NEW_PASSWORD}).session
    with pytest.raises(AuthApiError):
        client(app).auth.sign_in_with_password({"email": "maya@example.com", "password": PASSWORD})
    with pytest.raises(AuthApiError) as used:  # a code works once
        client(app).auth.verify_otp({"email": "maya@example.com", "token": code_in(message), "type": "recovery"})
    assert used.value.code == "otp_expired"


def test_confirming_a_sign_up_by_link_with_pkce(app, settings, smtp, worker):
    settings.AUTH_EMAIL_CONFIRM = True
    supabase = client(app)
    pending = supabase.auth.sign_up(
        {"email": "maya@example.com", "password": PASSWORD, "options": {"email_redirect_to": "http://front.test/in"}}
    )
    assert pending.session is None and pending.user.email == "maya@example.com"
    with pytest.raises(AuthApiError) as unconfirmed:
        client(app).auth.sign_in_with_password({"email": "maya@example.com", "password": PASSWORD})
    assert unconfirmed.value.code == "email_not_confirmed"

    (message,) = inbox_for(smtp, worker, "maya@example.com")
    link = link_in(message)
    assert "token=pkce_" in link  # supabase-py starts a PKCE flow by default
    landed = httpx.get(link)  # a browser: no API key
    assert landed.status_code == 303
    code = re.fullmatch(r"http://front\.test/in\?code=(\S+)", landed.headers["location"]).group(1)
    session = supabase.auth.exchange_code_for_session({"auth_code": code}).session
    assert me(app, session.access_token).status_code == 200
    assert User.objects.get(email="maya@example.com").email_confirmed_at is not None
    again = httpx.get(link)  # the link works once
    assert "error_code=otp_expired" in again.headers["location"]


def test_a_magic_link_signs_in_and_an_unknown_redirect_goes_to_the_site(app, settings, smtp, worker):
    supabase = client(app)
    supabase.auth.sign_up({"email": "maya@example.com", "password": PASSWORD})
    implicit = create_client(
        app.url, api_key("anon"), options=ClientOptions(auto_refresh_token=False, flow_type="implicit")
    )
    implicit.auth.sign_in_with_otp(
        {"email": "maya@example.com", "options": {"email_redirect_to": "https://evil.test/"}}
    )
    (message,) = inbox_for(smtp, worker, "maya@example.com")
    landed = httpx.get(link_in(message))
    target, _, fragment = landed.headers["location"].partition("#")
    assert target == settings.AUTH_SITE_URL
    assert "access_token=" in fragment and "type=magiclink" in fragment
    access = re.search(r"access_token=([^&]+)", fragment).group(1)
    assert me(app, access).status_code == 200


def test_changing_email_needs_both_addresses(app, smtp, worker):
    supabase = client(app)
    supabase.auth.sign_up({"email": "maya@example.com", "password": PASSWORD})
    pending = supabase.auth.update_user({"email": "maya@new.example"})
    assert pending.user.new_email == "maya@new.example" and pending.user.email == "maya@example.com"
    worker()
    codes = {item["to"][0]: code_in(item["message"]) for item in smtp.inbox}
    assert set(codes) == {"maya@example.com", "maya@new.example"}
    first = client(app).auth.verify_otp(
        {"email": "maya@example.com", "token": codes["maya@example.com"], "type": "email_change"}
    )
    assert first.session is None
    assert User.objects.get().email == "maya@example.com"
    done = client(app).auth.verify_otp(
        {"email": "maya@new.example", "token": codes["maya@new.example"], "type": "email_change"}
    )
    assert done.user.email == "maya@new.example"
    assert User.objects.get().email == "maya@new.example"
    assert User.objects.get().profile.email == "maya@new.example"


def test_recovering_a_password_by_the_emailed_link(app, smtp, worker):
    """The link, as a browser opens it: supabase-py started a PKCE flow, so the link lands
    on redirect_to with ?code=, which the same client trades for a session."""
    client(app).auth.sign_up({"email": "maya@example.com", "password": PASSWORD})
    device = client(app)
    device.auth.reset_password_for_email("maya@example.com", {"redirect_to": "http://front.test/reset"})
    (message,) = inbox_for(smtp, worker, "maya@example.com")
    landed = httpx.get(link_in(message))
    assert landed.status_code == 303
    code = re.fullmatch(r"http://front\.test/reset\?code=(\S+)", landed.headers["location"]).group(1)
    session = device.auth.exchange_code_for_session({"auth_code": code}).session
    device.auth.update_user({"password": NEW_PASSWORD})
    assert me(app, session.access_token).status_code == 200
    assert client(app).auth.sign_in_with_password({"email": "maya@example.com", "password": NEW_PASSWORD}).session
