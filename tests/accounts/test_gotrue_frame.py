"""``/auth/v1``'s frame (issue 16): the API keys, GoTrue's error shape, health, settings,
CORS for the front end's origins, and ``manage.py supabase_keys`` (the JWKS:
test_jwt_keys.py)."""

import io

import jwt
import pytest
from django.core.management import call_command

from accounts.apikeys import api_key, api_key_role

ORIGIN = "https://app.velro.example"

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys():
    out = io.StringIO()
    call_command("supabase_keys", "--url", "https://api.velro.example/", stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines())
    return lines


def test_supabase_keys_prints_the_url_and_two_stable_role_keys(keys, settings):
    assert keys["SUPABASE_URL"] == "https://api.velro.example"
    anon, service = keys["SUPABASE_ANON_KEY"], keys["SUPABASE_SERVICE_ROLE_KEY"]
    assert (api_key_role(anon), api_key_role(service)) == ("anon", "service_role")
    assert jwt.get_unverified_header(anon)["alg"] == "HS256"
    assert (api_key("anon"), api_key("service_role")) == (anon, service)  # printed again: the same
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": "another-secret-" * 4}
    assert api_key_role(anon) is None and api_key("anon") != anon  # a new secret: new keys


def test_a_request_without_a_valid_key_is_refused_in_gotrues_shape(client, keys):
    response = client.get("/auth/v1/health")
    assert response.status_code == 401
    assert response.json()["code"] == "no_api_key" and response.json()["message"] == "No API key found in request"
    assert response["X-Supabase-Api-Version"] == "2024-01-01"

    forged = jwt.encode({"iss": "velro", "role": "service_role", "exp": 4_000_000_000}, "guess", algorithm="HS256")
    user_shaped = jwt.encode({"iss": "velro", "role": "authenticated", "exp": 4_000_000_000}, "x", algorithm="HS256")
    for bad in (forged, user_shaped, "not-a-jwt"):
        response = client.get("/auth/v1/health", HTTP_APIKEY=bad)
        assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"
        assert response.json()["msg"] == "Invalid API key"  # the legacy key older clients read


def test_health_and_settings_with_either_key_header(client, keys):
    health = client.get("/auth/v1/health", HTTP_APIKEY=keys["SUPABASE_ANON_KEY"])
    assert health.status_code == 200 and health.json()["name"] == "GoTrue"
    # Supabase's clients send the key as a bearer token too, until someone signs in.
    settings = client.get("/auth/v1/settings", HTTP_AUTHORIZATION=f"Bearer {keys['SUPABASE_ANON_KEY']}")
    assert settings.status_code == 200
    body = settings.json()
    assert body["external"]["email"] is True and body["external"]["phone"] is False
    assert body["disable_signup"] is False and body["saml_enabled"] is False


def test_an_unknown_auth_path_is_a_gotrue_404(client, keys):
    response = client.post("/auth/v1/no-such-thing", HTTP_APIKEY=keys["SUPABASE_ANON_KEY"])
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_an_api_key_is_not_a_user_token_on_api_v1(api, keys, db):
    for key in (keys["SUPABASE_ANON_KEY"], keys["SUPABASE_SERVICE_ROLE_KEY"]):
        response = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 401, response.content


def test_browsers_on_the_front_ends_origin_may_call_both_surfaces(client, settings, keys):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    preflight = client.options(
        "/auth/v1/settings",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="apikey, authorization, x-client-info, x-supabase-api-version",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip() for h in preflight["Access-Control-Allow-Headers"].split(",")}
    assert {"apikey", "authorization", "x-client-info", "x-supabase-api-version"} <= allowed

    response = client.get("/auth/v1/settings", HTTP_ORIGIN=ORIGIN, HTTP_APIKEY=keys["SUPABASE_ANON_KEY"])
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Supabase-Api-Version" in response["Access-Control-Expose-Headers"]  # js reads the error code by it

    elsewhere = client.get("/api/v1/models", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in elsewhere
    assert client.get("/api/v1/models", HTTP_ORIGIN=ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN


# --- GET user -------------------------------------------------------------------------


def test_get_user_answers_the_bearers_user_object_in_gotrues_shape(client, keys, alice):
    from tests.conftest import bearer

    response = client.get("/auth/v1/user", HTTP_APIKEY=keys["SUPABASE_ANON_KEY"], **bearer(alice))
    assert response.status_code == 200, response.content
    user = response.json()
    # What supabase-py's pydantic User requires, and GoTrue's other fields.
    assert user["id"] == str(alice.pk) and user["aud"] == "authenticated" and user["role"] == "authenticated"
    assert user["email"] == "alice@example.com" and user["phone"] == "" and user["is_anonymous"] is False
    assert user["app_metadata"]["provider"] == "email" and user["app_metadata"]["providers"] == ["email"]
    assert user["user_metadata"] == {"full_name": "Alice Owner"}
    assert user["created_at"].endswith("Z") and "email_confirmed_at" not in user  # nulls are left out
    (identity,) = user["identities"]
    assert {"id", "identity_id", "user_id", "identity_data", "provider", "created_at"} <= set(identity)
    assert identity["identity_data"]["sub"] == str(alice.pk) and identity["identity_data"]["email_verified"] is False
    again = client.get("/auth/v1/user", HTTP_APIKEY=keys["SUPABASE_ANON_KEY"], **bearer(alice)).json()
    assert again["identities"][0]["identity_id"] == identity["identity_id"]  # stable


def test_get_user_refuses_what_gotrue_refuses(client, keys, alice):
    import jwt as pyjwt

    from tests.conftest import bearer, signed

    anon = keys["SUPABASE_ANON_KEY"]

    def get(**headers):
        response = client.get("/auth/v1/user", HTTP_APIKEY=anon, **headers)
        return response.status_code, response.json()["code"]

    assert get() == (401, "no_authorization")
    assert get(HTTP_AUTHORIZATION=f"Bearer {anon}") == (403, "bad_jwt")  # the key: no sub
    forged = pyjwt.encode({"sub": str(alice.pk), "role": "authenticated"}, "not-the-secret" * 4, algorithm="HS256")
    assert get(HTTP_AUTHORIZATION=f"Bearer {forged}") == (403, "bad_jwt")
    expired = signed(
        {"sub": str(alice.pk), "role": "authenticated", "aud": "authenticated", "exp": 1, "token_type": "access"}
    )
    assert get(HTTP_AUTHORIZATION=f"Bearer {expired}") == (403, "bad_jwt")
    token = bearer(alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert get(**token) == (403, "user_banned")
    alice.delete()
    assert get(**token) == (403, "user_not_found")
