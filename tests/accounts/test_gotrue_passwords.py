"""People moved over from Supabase Auth keep their passwords (issue 16): GoTrue's bcrypt
hashes (``$2a$10$…``, made here by the real bcrypt library) are verified at sign-in and
replaced by Django's hash at once."""

import bcrypt
import pytest

from accounts.models import User

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _hashers(settings):
    # The suite's fast hasher first (what new hashes use), then the GoTrue one.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "accounts.hashers.GoTrueBcryptPasswordHasher",
    ]


@pytest.fixture
def moved(db):
    gotrue_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a")).decode()
    assert gotrue_hash.startswith("$2a$04$")
    user = User.objects.create_user(email="moved@example.com", password=None)
    User.objects.filter(pk=user.pk).update(password=f"bcrypt${gotrue_hash}")  # as import_supabase stores it
    return user


def login(api, password):
    return api.post("/api/v1/auth/login", {"email": "moved@example.com", "password": password}, format="json")


def test_an_old_password_signs_in_and_is_rehashed(api, moved):
    response = login(api, PASSWORD)
    assert response.status_code == 200, response.content
    assert response.json()["access"]
    moved.refresh_from_db()
    assert moved.password.startswith("md5$") and moved.check_password(PASSWORD)
    assert login(api, PASSWORD).status_code == 200  # and keeps working with the new hash


@pytest.mark.parametrize("wrong", ["correct horse battery stapl", "", PASSWORD + "x" * 100])
def test_a_wrong_or_overlong_password_is_refused_and_nothing_changes(api, moved, wrong):
    response = login(api, wrong)
    assert response.status_code in (400, 401), response.content  # never a 500 (bcrypt refuses > 72 bytes)
    moved.refresh_from_db()
    assert moved.password.startswith("bcrypt$$2a$04$")
