"""POST auth/register, auth/login, auth/refresh."""

import jwt
import pytest

from accounts.models import Profile, User
from credits.models import CreditTransaction
from tests.factories import PASSWORD
from velro.jwt_keys import key_set


def register(api, **body):
    return api.post("/api/v1/auth/register", body, format="json")


class TestRegister:
    def test_it_creates_the_account_and_returns_profile_and_tokens(self, db, api):
        response = register(api, email="New@Example.com", password=PASSWORD, full_name="New Person")
        assert response.status_code == 201
        body = response.json()
        user = User.objects.get(email="new@example.com")
        assert body["user"] == {
            "id": str(user.pk),
            "email": "new@example.com",
            "full_name": "New Person",
            "avatar_url": "",
            "credits_balance": 100,
            "storage_bytes": 0,
            "current_plan": "free",
            "created_at": body["user"]["created_at"],
        }
        public_key = key_set().signing.public_key
        claims = jwt.decode(body["access"], public_key, algorithms=["ES256"], audience="authenticated")
        assert (claims["sub"], claims["role"], claims["email"]) == (str(user.pk), "authenticated", user.email)
        assert claims["exp"] > claims["iat"]
        assert user.check_password(PASSWORD)

    def test_the_new_tokens_work(self, db, api):
        body = register(api, email="t@example.com", password=PASSWORD).json()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
        assert api.get("/api/v1/me").json()["email"] == "t@example.com"

    @pytest.mark.parametrize("email", ["alice@example.com", "ALICE@example.COM"])
    def test_a_taken_email_is_a_400_on_the_field(self, alice, api, email):
        response = register(api, email=email, password=PASSWORD)
        assert response.status_code == 400
        assert response.json()["errors"] == {"email": ["A user with this email already exists."]}
        assert User.objects.count() == 1

    @pytest.mark.parametrize(
        ("password", "fragment"),
        [
            ("short1!", "too short"),
            ("password123", "too common"),
            ("83749261038", "entirely numeric"),
            ("similar.person@example.com", "too similar"),
        ],
    )
    def test_passwords_go_through_djangos_validators(self, db, api, password, fragment):
        response = register(api, email="similar.person@example.com", password=password)
        assert response.status_code == 400
        assert any(fragment in message for message in response.json()["errors"]["password"])
        assert not User.objects.exists()

    def test_the_name_counts_for_the_similarity_check(self, db, api):
        response = register(api, email="x@example.com", password="Montgomery Burns", full_name="Montgomery Burns")
        assert response.status_code == 400
        assert "password" in response.json()["errors"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"password": PASSWORD}, "email"),
            ({"email": "not-an-email", "password": PASSWORD}, "email"),
            ({"email": "a@example.com"}, "password"),
            ({"email": ["a@example.com"], "password": PASSWORD}, "email"),
            ({"email": "a@example.com", "password": PASSWORD, "full_name": "x" * 101}, "full_name"),
            ({"email": "a@example.com", "password": PASSWORD, "credits_balance": 99999}, "credits_balance"),
        ],
    )
    def test_bad_input_is_a_400_with_a_field_message(self, db, api, body, field):
        response = register(api, **body)
        assert response.status_code == 400
        assert field in response.json()["errors"]
        assert not User.objects.exists()

    def test_malformed_json_is_a_400(self, db, api):
        response = api.post("/api/v1/auth/register", "{not json", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"


class TestLogin:
    def test_it_returns_tokens_and_the_profile_and_records_the_sign_in(self, alice, api):
        assert alice.last_login is None
        response = api.post("/api/v1/auth/login", {"email": "ALICE@example.com", "password": PASSWORD}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"access", "refresh", "user"}
        assert body["user"]["id"] == str(alice.pk)
        alice.refresh_from_db()
        assert alice.last_login is not None

    @pytest.mark.parametrize(
        "credentials",
        [
            {"email": "alice@example.com", "password": "wrong-password"},
            {"email": "nobody@example.com", "password": PASSWORD},
        ],
        ids=["wrong-password", "unknown-email"],
    )
    def test_wrong_credentials_give_one_401_message(self, alice, api, credentials):
        response = api.post("/api/v1/auth/login", credentials, format="json")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid email or password.", "code": "no_active_account"}

    def test_an_inactive_user_cannot_sign_in(self, alice, api):
        User.objects.filter(pk=alice.pk).update(is_active=False)
        response = api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": PASSWORD}, format="json")
        assert response.status_code == 401

    def test_missing_fields_are_a_400(self, db, api):
        response = api.post("/api/v1/auth/login", {"email": "a@example.com"}, format="json")
        assert response.status_code == 400
        assert "password" in response.json()["errors"]


class TestRefresh:
    def login(self, api):
        return api.post(
            "/api/v1/auth/login", {"email": "alice@example.com", "password": PASSWORD}, format="json"
        ).json()

    def test_it_returns_a_new_access_token_with_the_same_claims(self, alice, api):
        tokens = self.login(api)
        response = api.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
        assert response.status_code == 200
        claims = jwt.decode(response.json()["access"], options={"verify_signature": False})
        assert (claims["sub"], claims["role"], claims["email"], claims["token_type"]) == (
            str(alice.pk),
            "authenticated",
            alice.email,
            "access",
        )

    def test_an_access_token_is_not_a_refresh_token(self, alice, api):
        tokens = self.login(api)
        response = api.post("/api/v1/auth/refresh", {"refresh": tokens["access"]}, format="json")
        assert response.status_code == 401

    @pytest.mark.parametrize("action", ["deactivate", "delete"])
    def test_refresh_stops_working_for_inactive_or_deleted_users(self, alice, api, action):
        tokens = self.login(api)
        if action == "delete":
            User.objects.filter(pk=alice.pk).delete()
        else:
            User.objects.filter(pk=alice.pk).update(is_active=False)
        response = api.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
        assert response.status_code == 401
        # Deleting a person deletes their sessions and tokens with them.
        assert response.json()["code"] == {"delete": "refresh_token_not_found", "deactivate": "user_banned"}[action]

    def test_garbage_is_a_401(self, db, api):
        response = api.post("/api/v1/auth/refresh", {"refresh": "garbage"}, format="json")
        assert response.status_code == 401
        assert response.json()["code"] == "refresh_token_not_found"


def test_registration_writes_exactly_one_bonus(db, api):
    register(api, email="one@example.com", password=PASSWORD)
    user = User.objects.get()
    assert Profile.objects.get(pk=user.pk).credits_balance == 100
    assert CreditTransaction.objects.filter(user=user).count() == 1
