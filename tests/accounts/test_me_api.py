"""GET/PATCH me: the caller's own profile."""

import datetime

import jwt
import pytest

from accounts.models import Profile, User
from tests.conftest import signed


def test_anonymous_is_a_401(db, api):
    response = api.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_it_returns_the_callers_profile(alice, bob, api_as):
    body = api_as(alice).get("/api/v1/me").json()
    assert body["id"] == str(alice.pk)
    assert (body["email"], body["full_name"], body["credits_balance"], body["current_plan"]) == (
        "alice@example.com",
        "Alice Owner",
        100,
        "free",
    )
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "avatar_url",
        "credits_balance",
        "storage_bytes",
        "current_plan",
        "created_at",
    }


def test_patch_edits_name_and_avatar(alice, api_as):
    response = api_as(alice).patch(
        "/api/v1/me", {"full_name": "Alice Liddell", "avatar_url": "https://img.example/a.png"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["full_name"], response.json()["avatar_url"]) == (
        "Alice Liddell",
        "https://img.example/a.png",
    )
    profile = Profile.objects.get(pk=alice.pk)
    assert (profile.full_name, profile.avatar_url) == ("Alice Liddell", "https://img.example/a.png")


def test_a_name_set_through_the_api_survives_identity_metadata_changes(alice, api_as):
    api_as(alice).patch("/api/v1/me", {"full_name": "Chosen Name"}, format="json")
    alice.raw_user_meta_data = {"full_name": "From The Provider"}
    alice.save()
    assert Profile.objects.get(pk=alice.pk).full_name == "Chosen Name"


@pytest.mark.parametrize(
    "body",
    [
        {"credits_balance": 1_000_000},
        {"current_plan": "enterprise"},
        {"full_name": "Sneaky", "credits_balance": 5},
        {"storage_bytes": 0},
        {"email": "other@example.com"},
        {"id": "00000000-0000-0000-0000-000000000000"},
        {"is_staff": True},
    ],
)
def test_server_owned_or_unknown_fields_are_rejected_and_nothing_changes(alice, api_as, body):
    response = api_as(alice).patch("/api/v1/me", body, format="json")
    assert response.status_code == 400
    field = next(key for key in body if key != "full_name")
    assert field in response.json()["errors"]
    profile = Profile.objects.get(pk=alice.pk)
    assert (profile.full_name, profile.credits_balance, profile.current_plan, profile.email) == (
        "Alice Owner",
        100,
        "free",
        "alice@example.com",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"full_name": "x" * 101}, "full_name"),
        ({"full_name": 7}, "full_name"),
    ],
)
def test_invalid_values_are_a_400(alice, api_as, body, field):
    response = api_as(alice).patch("/api/v1/me", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_bob_never_sees_or_changes_alices_profile(alice, bob, api_as):
    as_bob = api_as(bob)
    assert as_bob.get("/api/v1/me").json()["id"] == str(bob.pk)
    as_bob.patch("/api/v1/me", {"full_name": "Bob Changed"}, format="json")
    assert Profile.objects.get(pk=alice.pk).full_name == "Alice Owner"


def token(user, **overrides):
    now = datetime.datetime.now(tz=datetime.UTC)
    claims = {
        "token_type": "access",
        "sub": str(user.pk),
        "role": "authenticated",
        "email": user.email,
        "aud": "authenticated",
        "iat": int(now.timestamp()),
        "exp": int((now + datetime.timedelta(minutes=5)).timestamp()),
        "jti": "x",
    }
    claims.update(overrides)
    return claims


@pytest.mark.parametrize(
    "case",
    ["wrong-signature", "alg-none", "expired", "service-role", "wrong-audience", "unknown-user"],
)
def test_bad_tokens_are_a_401(alice, api, case):
    claims = token(alice)
    if case == "wrong-signature":
        raw = jwt.encode(claims, "not-the-key-not-the-key-not-the-key!", algorithm="HS256")
    elif case == "alg-none":
        raw = jwt.encode(claims, None, algorithm="none")
    elif case == "expired":
        raw = signed(token(alice, exp=1))
    elif case == "service-role":
        raw = signed(token(alice, role="service_role"))
    elif case == "wrong-audience":
        raw = signed(token(alice, aud="someone-else"))
    else:
        raw = signed(token(alice, sub="00000000-0000-0000-0000-000000000001"))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.get("/api/v1/me")
    assert response.status_code == 401, response.content


def test_an_inactive_users_access_token_stops_working(alice, api_as):
    client = api_as(alice)
    assert client.get("/api/v1/me").status_code == 200
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert client.get("/api/v1/me").status_code == 401
