"""The admin: email login, the user list, a user's profile and ledger, read only."""

import pytest
from django.core.management import call_command

from accounts.models import Session, User
from accounts.sessions import session_start
from tests.factories import PASSWORD


def test_a_createsuperuser_account_can_log_in_with_email(db, client, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", "--email", "boss@example.com", verbosity=0)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "Boss@Example.com", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert response.context["user"].email == "boss@example.com"
    assert b"Site administration" in response.content or b"Velro" in response.content
    assert client.get("/admin/accounts/user/").status_code == 200


def test_a_non_staff_user_cannot_use_the_admin(alice, client):
    client.force_login(alice)
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_user_list_searches_by_email(alice, bob, staff, client):
    client.force_login(staff)
    response = client.get("/admin/accounts/user/", {"q": "alice@"})
    assert response.status_code == 200
    shown = [row.email for row in response.context["cl"].result_list]
    assert shown == ["alice@example.com"]
    assert b"Alice Owner" in response.content


def test_the_change_page_shows_profile_and_ledger_read_only(alice, staff, client):
    client.force_login(staff)
    response = client.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Sign-up bonus" in content
    assert "credit ledger" in content.lower()
    formsets = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}
    # The ledger is a short list outside the form (tests/credits/test_admin_user_page.py).
    assert set(formsets) == {"profile", "sessions"}
    for inline in formsets.values():
        assert not inline.has_add_permission and not inline.has_change_permission
        # Staff can end a session (sign a device out), nothing else.
        assert inline.has_delete_permission is (inline.formset.prefix == "sessions")


def test_staff_end_a_session_from_the_change_page(alice, staff, client, api):
    phone = session_start(alice)
    kept = session_start(alice)
    client.force_login(staff)
    page = client.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert "sessions (delete one to sign that device out)" in page.content.decode().lower()
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("password",)}
    data.update({"raw_user_meta_data": "{}", "raw_app_meta_data": "{}", "is_active": "on"})
    data.update({"groups": [], "user_permissions": [], "profile-TOTAL_FORMS": "0", "profile-INITIAL_FORMS": "0"})
    data.update({"credit_transactions-TOTAL_FORMS": "0", "credit_transactions-INITIAL_FORMS": "0"})
    sessions = [kept.session.pk, phone.session.pk]  # newest first, as the inline lists them
    data.update({"sessions-TOTAL_FORMS": "2", "sessions-INITIAL_FORMS": "2"})
    for i, pk in enumerate(sessions):
        data.update({f"sessions-{i}-id": str(pk), f"sessions-{i}-user": str(alice.pk)})
    data["sessions-1-DELETE"] = "on"
    response = client.post(f"/admin/accounts/user/{alice.pk}/change/", data)
    assert response.status_code == 302
    assert list(Session.objects.filter(user=alice).values_list("pk", flat=True)) == [kept.session.pk]
    ended = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {phone.access_token}")
    assert ended.json()["code"] == "session_not_found"


@pytest.mark.parametrize("path", ["/admin/", "/admin/accounts/user/add/"])
def test_admin_pages_render(staff, client, path):
    client.force_login(staff)
    assert client.get(path).status_code == 200


def test_editing_a_user_in_the_admin_keeps_credits(alice, staff, client):
    client.force_login(staff)
    page = client.get(f"/admin/accounts/user/{alice.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("password",)}
    data.update(
        {
            "email": "alice@example.com",
            "raw_user_meta_data": '{"full_name": "Alice From Admin"}',
            "raw_app_meta_data": "{}",
            "is_active": "on",
            "groups": [],
            "user_permissions": [],
        }
    )
    for prefix in ("profile", "sessions", "credit_transactions"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/accounts/user/{alice.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    alice = User.objects.get(pk=alice.pk)
    assert alice.profile.full_name == "Alice From Admin"
    assert alice.profile.credits_balance == 100
