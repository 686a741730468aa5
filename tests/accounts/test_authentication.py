"""accounts.authentication: the caller's row and the RLS role switch in one statement."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User

pytestmark = pytest.mark.urls("tests.velro.rls_urls")


def owner_state():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, nullif(current_setting('request.jwt.claims', true), '')")
        return cursor.fetchone()


def test_the_published_claims_are_the_ones_the_glue_would_publish(alice, api_as):
    body = api_as(alice).get("/api/v1/_test/claims").json()
    assert body["published"] == body["expected"]
    assert set(body["published"]) == {"sub", "role", "email", "aud", "exp", "iat", "jti", "session_id"}
    assert body["published"]["sub"] == str(alice.pk)


def test_the_email_claim_is_the_current_one_not_the_tokens(alice, api_as):
    api = api_as(alice)  # token minted with the old address
    User.objects.filter(pk=alice.pk).update(email="alice.new@example.com")
    assert api.get("/api/v1/_test/claims").json()["published"]["email"] == "alice.new@example.com"


def test_reading_the_caller_and_switching_is_one_statement(alice, api_as):
    with CaptureQueriesContext(connection) as captured:
        assert api_as(alice).get("/api/v1/_test/whoami").json()["uid"] == str(alice.pk)
    statements = [q["sql"] for q in captured.captured_queries]
    assert sum("FROM auth.users AS u" in s and "set_config('role'" in s for s in statements) == 1
    # No second switch: only the reset at the end (inside the test's transaction).
    assert sum("set_config('role'" in s for s in statements) == 2


@pytest.mark.parametrize("how", ["inactive", "deleted"])
def test_an_inactive_or_deleted_caller_is_refused_and_nothing_is_switched(alice, api_as, how):
    api = api_as(alice)
    if how == "inactive":
        User.objects.filter(pk=alice.pk).update(is_active=False)
    else:
        User.objects.filter(pk=alice.pk).delete()
    response = api.get("/api/v1/_test/whoami")
    assert response.status_code == 401
    assert response.json()["code"] == ("user_inactive" if how == "inactive" else "user_not_found")
    assert owner_state() == (True, None)
    assert getattr(connection, "velro_rls_sub", None) is None


def test_force_authenticate_still_switches_through_the_glue(alice, api):
    api.force_authenticate(alice)
    assert api.get("/api/v1/_test/whoami").json() == {
        "role": "authenticated",
        "uid": str(alice.pk),
        "claim_role": "authenticated",
    }
