"""The admin: email login, the user list, a user's profile and ledger, read only."""

import pytest
from django.core.management import call_command

from accounts.models import User
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
    assert set(formsets) == {"profile", "credit_transactions"}
    for inline in formsets.values():
        assert not inline.has_add_permission and not inline.has_change_permission and not inline.has_delete_permission


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
    for prefix in ("profile", "credit_transactions"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/accounts/user/{alice.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    alice = User.objects.get(pk=alice.pk)
    assert alice.profile.full_name == "Alice From Admin"
    assert alice.profile.credits_balance == 100
