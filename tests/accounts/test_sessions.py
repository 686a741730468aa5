"""Sessions and refresh tokens in the database: rotation, GoTrue's reuse rules, theft
detection, sign-out scopes, and the list of one's sessions (issue 16)."""

import threading
from datetime import timedelta

import jwt
import pytest
from django.db import ProgrammingError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import RefreshToken, Session, User
from tests.conftest import as_role
from tests.factories import PASSWORD, UserFactory

LOGIN, REFRESH, LOGOUT, ME, SESSIONS = (
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/me",
    "/api/v1/me/sessions",
)


def login(api, email="alice@example.com", agent="Firefox on Linux"):
    response = api.post(LOGIN, {"email": email, "password": PASSWORD}, format="json", HTTP_USER_AGENT=agent)
    assert response.status_code == 200, response.content
    return response.json()


def refresh(api, token):
    return api.post(REFRESH, {"refresh": token}, format="json")


def me(api, access):
    return api.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


def test_signing_in_starts_a_session_named_in_the_access_token(alice, api):
    tokens = login(api)
    session = Session.objects.get(user=alice)
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    assert claims["session_id"] == str(session.pk)
    assert (claims["aal"], [entry["method"] for entry in claims["amr"]]) == ("aal1", ["password"])
    assert (claims["phone"], claims["is_anonymous"], claims["user_metadata"]) == ("", False, alice.raw_user_meta_data)
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert (session.user_agent, session.ip) == ("Firefox on Linux", "127.0.0.1")
    # The table keeps only the public half of the refresh token.
    stored = RefreshToken.objects.get(session=session)
    assert tokens["refresh"].startswith(stored.token) and tokens["refresh"] != stored.token


def test_a_refresh_rotates_the_token(alice, api):
    first = login(api)["refresh"]
    response = refresh(api, first)
    assert response.status_code == 200
    second = response.json()["refresh"]
    assert second != first
    assert me(api, response.json()["access"]).status_code == 200
    rows = list(RefreshToken.objects.order_by("id").values_list("revoked", "parent"))
    assert rows == [(True, ""), (False, first[:12])]


def test_the_used_token_again_gives_the_active_one_back(alice, api, settings):
    """A client that lost the answer to its refresh: GoTrue returns the active token, at
    any time, because it is the used token's direct child."""
    settings.AUTH_REFRESH_TOKEN_REUSE_INTERVAL = 0
    first = login(api)["refresh"]
    second = refresh(api, first).json()["refresh"]
    again = refresh(api, first)
    assert again.status_code == 200
    assert again.json()["refresh"] == second
    assert RefreshToken.objects.filter(revoked=False).count() == 1


def test_an_older_token_within_the_reuse_interval_gets_a_new_child(alice, api):
    first = login(api)["refresh"]
    second = refresh(api, first).json()["refresh"]
    third = refresh(api, second).json()["refresh"]
    response = refresh(api, first)  # two rotations ago, but within 10 s: tabs at once
    assert response.status_code == 200
    assert response.json()["refresh"] not in (first, second, third)
    assert Session.objects.filter(user=alice).count() == 1


def test_a_replayed_token_after_the_interval_ends_the_session(alice, api, settings):
    settings.AUTH_REFRESH_TOKEN_REUSE_INTERVAL = 0
    tokens = login(api)
    stolen = tokens["refresh"]
    second = refresh(api, stolen).json()
    third = refresh(api, second["refresh"]).json()
    response = refresh(api, stolen)
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_already_used"
    # The whole session is gone: its latest refresh token and its access tokens too.
    assert Session.objects.filter(user=alice).count() == 0
    assert refresh(api, third["refresh"]).json()["code"] == "refresh_token_not_found"
    refused = me(api, third["access"])
    assert (refused.status_code, refused.json()["code"]) == (401, "session_not_found")


def test_a_session_idle_longer_than_the_refresh_lifetime_expires(alice, api):
    tokens = login(api)
    Session.objects.update(refreshed_at=Session.objects.get().refreshed_at - timedelta(days=30))
    response = refresh(api, tokens["refresh"])
    assert (response.status_code, response.json()["code"]) == (401, "session_expired")
    assert not Session.objects.exists()


def test_a_forged_token_never_reaches_the_tokens_table(alice, api):
    real = login(api)["refresh"]
    forged = real[:12] + "A" * 22  # the real public half, a made-up HMAC
    with CaptureQueriesContext(connection) as queries:
        response = refresh(api, forged)
    assert response.json()["code"] == "refresh_token_not_found"
    assert [q["sql"] for q in queries.captured_queries if "refresh_tokens" in q["sql"]] == []


@pytest.mark.parametrize(
    ("scope", "left"),
    [("local", {"phone", "laptop"}), ("others", {"this"}), ("global", set())],
)
def test_logout_scopes(alice, api, scope, left):
    this = login(api, agent="this")
    others = [login(api, agent=agent) for agent in ("phone", "laptop")]
    response = api.post(LOGOUT, {"scope": scope}, format="json", HTTP_AUTHORIZATION=f"Bearer {this['access']}")
    assert response.status_code == 204
    assert set(Session.objects.values_list("user_agent", flat=True)) == left
    # An ended session's access token stops at once, a kept one still works.
    assert (me(api, this["access"]).status_code == 200) is ("this" in left)
    assert (me(api, others[0]["access"]).status_code == 200) is ("phone" in left)


def test_logout_without_a_body_ends_this_session_only(alice, bob, api):
    mine, bobs = login(api), login(api, email="bob@example.com")
    assert api.post(LOGOUT, HTTP_AUTHORIZATION=f"Bearer {mine['access']}").status_code == 204
    assert list(Session.objects.values_list("user", flat=True)) == [bob.pk]
    assert me(api, bobs["access"]).status_code == 200


def test_logout_with_an_unknown_scope_is_a_400(alice, api):
    tokens = login(api)
    response = api.post(LOGOUT, {"scope": "everyone"}, format="json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert response.status_code == 400
    assert "scope" in response.json()["errors"]
    assert Session.objects.count() == 1


def test_people_list_and_end_their_sessions(alice, bob, api):
    this = login(api, agent="this browser")
    phone = login(api, agent="phone")
    login(api, email="bob@example.com", agent="bob's")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {this['access']}"}
    listed = api.get(SESSIONS, **auth).json()
    assert [(item["user_agent"], item["current"]) for item in listed["results"]] == [
        ("phone", False),
        ("this browser", True),
    ]
    assert set(listed["results"][0]) == {"id", "user_agent", "ip", "method", "created_at", "last_used_at", "current"}
    phone_session = listed["results"][0]["id"]
    assert api.delete(f"{SESSIONS}/{phone_session}", **auth).status_code == 204
    assert me(api, phone["access"]).json()["code"] == "session_not_found"
    assert refresh(api, phone["refresh"]).json()["code"] == "refresh_token_not_found"
    bobs = Session.objects.get(user=bob).pk
    assert api.delete(f"{SESSIONS}/{bobs}", **auth).status_code == 404
    assert Session.objects.filter(pk=bobs).exists()


def test_deleting_a_person_deletes_their_sessions_and_tokens(alice, api):
    login(api)
    User.objects.filter(pk=alice.pk).delete()
    assert (Session.objects.count(), RefreshToken.objects.count()) == (0, 0)


def test_under_rls_people_read_and_delete_only_their_own_sessions(alice, bob):
    mine, bobs = Session.objects.create(user=alice), Session.objects.create(user=bob)
    RefreshToken.objects.create(session=mine, token="x" * 12)
    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT id FROM auth.sessions")
        assert cursor.fetchall() == [(mine.pk,)]
        cursor.execute("DELETE FROM auth.sessions WHERE id IN (%s, %s)", [mine.pk, bobs.pk])
        assert cursor.rowcount == 1
    assert list(Session.objects.values_list("pk", flat=True)) == [bobs.pk]
    assert not RefreshToken.objects.exists()  # cascaded with its session


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT token FROM auth.refresh_tokens",
        "INSERT INTO auth.sessions (user_id) VALUES (%(me)s)",
        "UPDATE auth.sessions SET refreshed_at = now()",
    ],
)
def test_under_rls_nobody_reads_tokens_or_makes_sessions(alice, statement):
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(statement, {"me": alice.pk})


@pytest.mark.django_db(transaction=True)
def test_tabs_refreshing_at_once_all_get_a_working_session():
    UserFactory(email="tabs@example.com")
    tokens = Client().post(LOGIN, {"email": "tabs@example.com", "password": PASSWORD}, content_type="application/json")
    token = tokens.json()["refresh"]
    results, barrier = [], threading.Barrier(4)

    def tab():
        try:
            barrier.wait()
            response = Client().post(REFRESH, {"refresh": token}, content_type="application/json")
            results.append((response.status_code, response.json().get("refresh")))
        finally:
            connection.close()

    threads = [threading.Thread(target=tab) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200] * 4
    assert Session.objects.count() == 1


def test_the_hourly_purge_deletes_only_what_can_no_longer_sign_in(alice):
    from accounts.models import FlowState, OneTimeToken
    from accounts.tasks import purge_expired_sign_ins

    old, fresh = Session.objects.create(user=alice), Session.objects.create(user=alice)
    RefreshToken.objects.create(session=old, token="o" * 12)
    Session.objects.filter(pk=old.pk).update(refreshed_at=fresh.created_at - timedelta(days=8))
    stale = OneTimeToken.objects.create(user=alice, token_type="recovery_token", token_hash="a", relates_to="x")
    OneTimeToken.objects.filter(pk=stale.pk).update(created_at=stale.created_at - timedelta(hours=2))
    OneTimeToken.objects.create(user=alice, token_type="confirmation_token", token_hash="b", relates_to="x")
    flow = FlowState.objects.create(
        user=alice, code_challenge="c", code_challenge_method="plain", authentication_method="signup"
    )
    FlowState.objects.filter(pk=flow.pk).update(created_at=flow.created_at - timedelta(days=2))

    assert purge_expired_sign_ins(timestamp=0) == {"sessions": 1, "one_time_tokens": 1, "flow_states": 1}
    assert list(Session.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert list(OneTimeToken.objects.values_list("token_hash", flat=True)) == ["b"]
    assert not FlowState.objects.exists() and not RefreshToken.objects.exists()


def test_a_banned_person_cannot_refresh_even_if_a_session_survived(alice, api):
    tokens = login(api)
    # A ban written straight to the row (not through user_ban, which ends the sessions).
    User.objects.filter(pk=alice.pk).update(banned_until=Session.objects.get().created_at + timedelta(days=1))
    response = refresh(api, tokens["refresh"])
    assert (response.status_code, response.json()["code"]) == (401, "user_banned")
