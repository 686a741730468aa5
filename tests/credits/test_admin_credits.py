"""The admin's credit screens: the grant/adjust action on users, and the read-only ledger."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from accounts.models import Profile
from credits.models import CreditTransaction
from tests.factories import UserFactory

USERS = "/admin/accounts/user/"
LEDGER = "/admin/credits/credittransaction/"


def grant(client, users, **fields):
    data = {"action": "grant_credits", "_selected_action": [str(u.pk) for u in users], **fields}
    return client.post(USERS, data)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


def test_choosing_the_action_shows_the_form_and_writes_nothing(alice, staff, client):
    client.force_login(staff)
    response = grant(client, [alice])
    assert response.status_code == 200
    assert "admin/credits/grant_credits.html" in [t.name for t in response.templates]
    assert b"alice@example.com" in response.content
    assert set(response.context["form"].fields) == {"kind", "amount", "reason"}
    assert not CreditTransaction.objects.filter(user=alice).exclude(type="signup_bonus").exists()


def test_a_grant_adds_credits_with_a_ledger_row_by_the_staff_member(alice, bob, staff, client):
    client.force_login(staff)
    response = grant(client, [alice, bob], apply="1", kind="grant", amount="50", reason="Apology for the outage")
    assert response.status_code == 302
    assert balance(alice) == 150 and balance(bob) == 150
    entry = CreditTransaction.objects.get(user=alice, type="grant")
    assert (entry.amount, entry.balance_after, entry.created_by_id) == (50, 150, staff.pk)
    assert entry.description == "Apology for the outage"
    shown = messages_of(response)
    assert ("success", "alice@example.com: grant of +50 credits, balance now 150.") in shown
    assert len([level for level, _ in shown if level == "success"]) == 2


def test_a_negative_adjustment_within_the_balance_is_applied(alice, staff, client):
    client.force_login(staff)
    response = grant(client, [alice], apply="1", kind="adjustment", amount="-30", reason="Duplicate bonus")
    assert response.status_code == 302
    assert balance(alice) == 70
    entry = CreditTransaction.objects.get(user=alice, type="adjustment")
    assert (entry.amount, entry.created_by_id) == (-30, staff.pk)


def test_an_adjustment_below_zero_is_reported_and_writes_nothing(alice, bob, staff, client):
    client.force_login(staff)
    response = grant(client, [alice, bob], apply="1", kind="adjustment", amount="-500", reason="Chargeback")
    assert response.status_code == 302
    assert balance(alice) == 100 and balance(bob) == 100
    assert not CreditTransaction.objects.filter(type="adjustment").exists()
    errors = [text for level, text in messages_of(response) if level == "error"]
    assert len(errors) == 2
    assert errors[0].startswith("alice@example.com: Insufficient credits")


def test_one_refused_user_does_not_stop_the_others(alice, bob, staff, client):
    from credits.services import credits_grant

    credits_grant(user=bob, amount=500, reason="Top-up")
    client.force_login(staff)
    response = grant(client, [alice, bob], apply="1", kind="adjustment", amount="-200", reason="Correction")
    assert response.status_code == 302
    assert balance(alice) == 100 and balance(bob) == 400
    levels = dict((text.split(":")[0], level) for level, text in messages_of(response))
    assert levels == {"alice@example.com": "error", "bob@example.com": "success"}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "grant", "amount": "50", "reason": "  "}, "reason", "This field is required."),
        ({"kind": "grant", "amount": "-5", "reason": "Oops"}, "amount", "use an adjustment"),
        ({"kind": "adjustment", "amount": "0", "reason": "Nothing"}, "amount", "non-zero"),
        ({"kind": "grant", "amount": "1000001", "reason": "Too much"}, "amount", "less than or equal"),
        ({"kind": "gift", "amount": "5", "reason": "Unknown kind"}, "kind", "Select a valid choice"),
    ],
)
def test_invalid_input_reshows_the_form_with_the_error_and_writes_nothing(alice, staff, client, fields, field, message):
    client.force_login(staff)
    response = grant(client, [alice], apply="1", **fields)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {field}
    assert message in " ".join(errors[field])
    assert balance(alice) == 100
    assert CreditTransaction.objects.filter(user=alice).count() == 1  # the sign-up bonus only


def test_staff_without_the_ledger_permission_cannot_grant(alice, client):
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client.force_login(clerk)
    page = client.get(USERS)
    assert page.status_code == 200
    assert "grant_credits" not in page.context["cl"].model_admin.get_actions(page.wsgi_request)
    response = grant(client, [alice], apply="1", kind="grant", amount="50", reason="Sneaky")
    assert response.status_code == 200  # just the list again: the action is not offered
    assert balance(alice) == 100
    assert not CreditTransaction.objects.filter(type="grant").exists()


def test_the_ledger_is_read_only_in_the_admin(alice, staff, client):
    client.force_login(staff)
    entry = CreditTransaction.objects.get(user=alice)
    assert client.get(f"{LEDGER}add/").status_code == 403
    assert client.post(f"{LEDGER}{entry.pk}/delete/").status_code == 403
    assert client.post(f"{LEDGER}{entry.pk}/change/", {"amount": "1000"}).status_code == 403
    page = client.get(f"{LEDGER}{entry.pk}/change/")
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert b'name="_save"' not in page.content
    changelist = client.get(LEDGER)
    assert changelist.context["action_form"] is None  # not even "delete selected"
    assert CreditTransaction.objects.get(pk=entry.pk).amount == 100


def test_the_ledger_list_searches_and_filters(alice, bob, staff, client):
    from credits.services import credits_grant

    credits_grant(user=alice, amount=5, reason="Beta tester thanks", created_by=staff)
    client.force_login(staff)
    response = client.get(LEDGER, {"q": "alice@"})
    assert response.status_code == 200
    assert {row.user_id for row in response.context["cl"].result_list} == {alice.pk}
    response = client.get(LEDGER, {"type__exact": "grant"})
    assert [row.description for row in response.context["cl"].result_list] == ["Beta tester thanks"]
    assert b"staff@example.com" in response.content
    response = client.get(LEDGER, {"q": "beta tester"})
    assert [row.amount for row in response.context["cl"].result_list] == [5]
