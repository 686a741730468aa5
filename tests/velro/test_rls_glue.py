"""The glue that runs every API request under the caller's database role."""

import pytest
from django.db import connection

from accounts.models import Profile

pytestmark = pytest.mark.urls("tests.velro.rls_urls")


def test_a_viewset_that_forgets_to_filter_still_returns_only_the_callers_profile(alice, bob, api_as):
    response = api_as(alice).get("/api/v1/_test/profiles")
    assert response.status_code == 200
    assert [row["user"] for row in response.json()] == [str(alice.pk)]


def test_an_unfiltered_count_counts_only_the_callers_rows(alice, bob, api_as):
    assert api_as(bob).get("/api/v1/_test/ledger-count").json() == {"rows": 1}


def test_force_authenticate_cannot_skip_the_role_switch(alice, bob, api):
    api.force_authenticate(alice)
    response = api.get("/api/v1/_test/profiles")
    assert [row["user"] for row in response.json()] == [str(alice.pk)]


def test_the_request_runs_as_authenticated_with_the_callers_claims(alice, api_as):
    assert api_as(alice).get("/api/v1/_test/whoami").json() == {
        "role": "authenticated",
        "uid": str(alice.pk),
        "claim_role": "authenticated",
    }


def test_anonymous_requests_run_as_anon(db, api):
    assert api.get("/api/v1/_test/whoami").json() == {"role": "anon", "uid": None, "claim_role": "anon"}


def owner_state():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, nullif(current_setting('request.jwt.claims', true), '')")
        return cursor.fetchone()


def test_nothing_is_left_behind_for_the_next_request_or_the_admin(alice, bob, staff, api_as, client):
    """Several requests in one test (one transaction, savepoints per request), then the
    admin: each sees its own caller, and the test body is back to the owner role."""
    assert api_as(alice).get("/api/v1/me").json()["email"] == alice.email
    assert owner_state() == (True, None)
    assert api_as(bob).get("/api/v1/me").json()["email"] == bob.email
    assert api_as(alice).patch("/api/v1/me", {"full_name": "Alice Two"}, format="json").status_code == 200
    assert owner_state() == (True, None)
    assert Profile.objects.count() == 3  # the owner sees everything again
    client.force_login(staff)
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get(f"/admin/accounts/user/{alice.pk}/change/").status_code == 200


def test_an_error_response_leaves_nothing_behind_and_writes_nothing(alice, api_as):
    response = api_as(alice).post("/api/v1/_test/fails-after-writing", {}, format="json")
    assert response.status_code == 400
    assert owner_state() == (True, None)
    assert Profile.objects.get(pk=alice.pk).full_name == "Alice Owner"
    assert api_as(alice).get("/api/v1/me").status_code == 200


def test_a_request_outside_a_transaction_is_refused(alice, api_as, settings):
    from velro.rls import RLSNotInTransaction

    connection.settings_dict["ATOMIC_REQUESTS"] = False
    try:
        with pytest.raises(RLSNotInTransaction):
            # Inside the test's own transaction the block is atomic; leave it to
            # show the check on what production would do without ATOMIC_REQUESTS.
            from unittest import mock

            with mock.patch.object(type(connection), "in_atomic_block", False, create=True):
                api_as(alice).get("/api/v1/_test/whoami")
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = True
