"""/auth/v1's flows at the edges the clients rarely show: refusals, limits, PKCE
failures, decoys (issue 16). The happy paths run with the real supabase-py in
test_supabase_py.py."""

import base64
import hashlib
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from procrastinate.contrib.django.models import ProcrastinateJob

from accounts.apikeys import api_key
from accounts.models import FlowState, OneTimeToken, User
from accounts.sessions import session_start
from tests.factories import PASSWORD

AUTH = "/auth/v1/"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.PASSWORD_BREACH_CHECK = False
    settings.AUTH_EMAIL_CONFIRM = False
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def call(client, django_capture_on_commit_callbacks):
    """``call(method, path, body=None, **headers)`` with the anon key; emails deferred."""

    def run(method, path, body=None, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(
                AUTH + path, body, content_type="application/json", HTTP_APIKEY=api_key("anon"), **headers
            )

    return run


def emails_to(address: str) -> list[str]:
    return [
        job["text"]
        for job in ProcrastinateJob.objects.filter(task_name="velro.tasks.send_email").values_list("args", flat=True)
        if address in job["to"]
    ]


def code_in(text: str) -> str:
    return re.search(r"code: (\d{6})", text).group(1)


def test_an_unknown_grant_is_a_400(db, call):
    response = call("post", "token?grant_type=client_credentials", {})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")


def test_an_empty_refresh_token_is_oauths_invalid_request(db, call):
    response = call("post", "token?grant_type=refresh_token", {"refresh_token": ""})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "refresh_token required"}


def test_a_body_that_is_not_json_is_a_400(db, call):
    response = call("post", "token?grant_type=password", "{not json")
    assert (response.status_code, response.json()["code"]) == (400, "bad_json")


def test_guessing_codes_is_limited_per_email(alice, call):
    call("post", "recover", {"email": alice.email})
    statuses = [
        call("post", "verify", {"type": "recovery", "email": alice.email, "token": f"{n:06d}"}).status_code
        for n in range(11)
    ]
    assert statuses[:10] == [403] * 10  # otp_expired: wrong codes
    assert statuses[10] == 429
    # The right code is refused too while the limit holds.
    right = code_in(emails_to(alice.email)[0])
    assert call("post", "verify", {"type": "recovery", "email": alice.email, "token": right}).status_code == 429


def test_signing_up_a_registered_address_with_confirmation_on_answers_a_decoy(alice, call, settings):
    from django.utils import timezone

    settings.AUTH_EMAIL_CONFIRM = True
    User.objects.filter(pk=alice.pk).update(email_confirmed_at=timezone.now())
    response = call("post", "signup", {"email": alice.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["identities"] == [] and body["id"] != str(alice.pk) and body["email"] == alice.email
    assert emails_to(alice.email) == []  # alice is confirmed: nothing to resend


def test_resend_sends_the_confirmation_again_only_to_unconfirmed_people(db, call, settings):
    settings.AUTH_EMAIL_CONFIRM = True
    assert call("post", "signup", {"email": "new@example.com", "password": PASSWORD}).status_code == 200
    assert call("post", "resend", {"type": "signup", "email": "new@example.com"}).json() == {}
    assert call("post", "resend", {"type": "signup", "email": "nobody@example.com"}).json() == {}
    first, second = emails_to("new@example.com")
    assert emails_to("nobody@example.com") == []
    # Only the latest token works: one per person and kind.
    assert OneTimeToken.objects.filter(user__email="new@example.com").count() == 1
    old = call("post", "verify", {"type": "signup", "email": "new@example.com", "token": code_in(first)})
    assert (old.status_code, old.json()["code"]) == (403, "otp_expired")
    new = call("post", "verify", {"type": "signup", "email": "new@example.com", "token": code_in(second)})
    assert new.status_code == 200 and new.json()["user"]["email_confirmed_at"]


def test_a_broken_link_lands_with_the_error_in_the_fragment(db, client, settings):
    response = client.get(AUTH + "verify?token=nope&type=signup&redirect_to=http://localhost:3000/in")
    assert response.status_code == 303
    target, _, fragment = response["Location"].partition("#")
    assert target == settings.AUTH_SITE_URL  # not on the allow-list
    assert "error=access_denied" in fragment and "error_code=otp_expired" in fragment


def pkce_flow(user, **changes) -> FlowState:
    flow = FlowState.objects.create(
        user=user,
        code_challenge=CHALLENGE,
        code_challenge_method="s256",
        authentication_method="signup",
        auth_code_hash=hashlib.sha256(b"the-code").hexdigest(),
    )
    FlowState.objects.filter(pk=flow.pk).update(**changes)
    return flow


@pytest.mark.parametrize(
    ("issued_ago", "verifier", "status", "code"),
    [
        (timedelta(minutes=1), VERIFIER, 200, None),
        (timedelta(minutes=1), "w" * 50, 400, "bad_code_verifier"),
        (timedelta(minutes=6), VERIFIER, 422, "flow_state_expired"),
    ],
    ids=["ok", "wrong-verifier", "expired"],
)
def test_the_pkce_exchange(alice, call, issued_ago, verifier, status, code):
    from django.utils import timezone

    pkce_flow(alice, auth_code_issued_at=timezone.now() - issued_ago)
    response = call("post", "token?grant_type=pkce", {"auth_code": "the-code", "code_verifier": verifier})
    assert response.status_code == status
    if code:
        assert response.json()["code"] == code
    else:
        assert response.json()["user"]["id"] == str(alice.pk)
        again = call("post", "token?grant_type=pkce", {"auth_code": "the-code", "code_verifier": verifier})
        assert (again.status_code, again.json()["code"]) == (404, "flow_state_not_found")  # once


def test_changing_to_the_same_password_is_a_422(alice, call):
    token = session_start(alice).access_token
    response = call("put", "user", {"password": PASSWORD}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (response.status_code, response.json()["code"]) == (422, "same_password")


def test_a_new_password_signs_the_other_sessions_out(alice, call):
    this, other = session_start(alice), session_start(alice)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {this.access_token}"}
    assert call("put", "user", {"password": "a-brand-new-passphrase-9"}, **auth).status_code == 200
    assert call("get", "user", HTTP_AUTHORIZATION=f"Bearer {other.access_token}").json()["code"] == "session_not_found"
    assert call("get", "user", **auth).status_code == 200
    assert User.objects.get(pk=alice.pk).check_password("a-brand-new-passphrase-9")


def test_an_email_already_taken_cannot_be_asked_for(alice, bob, call):
    token = session_start(alice).access_token
    response = call("put", "user", {"email": bob.email}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (response.status_code, response.json()["code"]) == (422, "email_exists")
    assert User.objects.get(pk=alice.pk).email_change == ""


def test_otp_without_create_user_does_not_make_accounts(db, call):
    response = call("post", "otp", {"email": "stranger@example.com", "create_user": False})
    assert (response.status_code, response.json()["code"]) == (422, "otp_disabled")
    assert not User.objects.filter(email="stranger@example.com").exists()
