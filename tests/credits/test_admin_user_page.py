"""A user's admin page: the balance, the newest ledger rows and the grant form, the
person's projects, generations, orders and sessions as short lists with links to the
rest, at a fixed number of queries."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Profile, Session
from billing.models import CreditPack, Order
from credits.models import CreditTransaction
from credits.services import credits_grant
from generations.models import Generation
from projects.models import Project
from tests.factories import UserFactory

FLUX = "fal-ai/flux/dev"


def page_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def credits_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/credits/"


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def staff_with(*codenames, email="helper@example.com"):
    """A staff member (not a superuser) with exactly these permissions."""
    person = UserFactory(email=email, is_staff=True, raw_user_meta_data={})
    for codename in codenames:
        app_label, name = codename.split(".")
        person.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=name))
    return person


def add_related_rows(user, count: int) -> None:
    """``count`` rows of each kind the user's page lists."""
    for i in range(count):
        credits_grant(user=user, amount=1, reason=f"Grant {i}")
    Project.objects.bulk_create([Project(user=user, name=f"Project {user.pk} {i}") for i in range(count)])
    picture = {"url": "https://cdn.example.com/out.png", "mime_type": "image/png"}
    Generation.objects.bulk_create(
        [Generation(user=user, ai_model_id=FLUX, prompt=f"cat {i}", outputs=[picture]) for i in range(count)]
    )
    pack = CreditPack.objects.order_by("sort_order").first()
    Order.objects.bulk_create(
        [Order(user=user, kind="pack", pack=pack, amount=500, currency="usd", credits=100) for _ in range(count)]
    )
    start = timezone.now() - timedelta(days=1)
    Session.objects.bulk_create(
        [Session(user=user, user_agent=f"device {i}", created_at=start + timedelta(seconds=i)) for i in range(count)]
    )


def test_the_page_shows_the_balance_the_newest_ten_ledger_rows_and_a_link_to_all(alice, bob, staff, client):
    for i in range(12):
        credits_grant(user=alice, amount=i + 1, reason=f"Grant number {i}")
    credits_grant(user=bob, amount=5, reason="Not alice's")
    client.force_login(staff)
    response = client.get(page_url(alice))
    assert response.status_code == 200
    content = response.content.decode()
    assert re.search(r'id="user-credits-balance"[^>]*>178<', content)  # 100 + 1 + … + 12
    ledger = response.context["ledger"]
    assert [row["cells"][4] for row in ledger["rows"]] == [f"Grant number {i}" for i in range(11, 1, -1)]
    assert ledger["more"] is True
    rows = re.search(r'<tbody id="user-ledger-rows">(.*?)</tbody>', content, re.S).group(1)
    assert rows.count('class="ledger-row"') == 10
    assert "Grant number 11" in rows and "Grant number 1<" not in rows and "Sign-up bonus" not in rows

    link = re.search(r'<a href="([^"]+)" id="user-ledger-all"', content).group(1).replace("&amp;", "&")
    assert link == f"/admin/credits/credittransaction/?user__id__exact={alice.pk}"
    listed = client.get(link)
    assert listed.status_code == 200
    assert {row.user_id for row in listed.context["cl"].result_list} == {alice.pk}
    assert len(listed.context["cl"].result_list) == 13


def test_the_page_lists_projects_generations_orders_and_sessions_ten_each(alice, bob, staff, client):
    add_related_rows(alice, 12)
    add_related_rows(bob, 1)
    client.force_login(staff)
    response = client.get(page_url(alice))
    assert response.status_code == 200
    content = response.content.decode()
    lists = {item["name"]: item for item in response.context["related"]}
    assert set(lists) == {"ledger", "projects", "generations", "orders"}
    for name, changelist in [
        ("projects", "/admin/projects/project/"),
        ("generations", "/admin/generations/generation/"),
        ("orders", "/admin/billing/order/"),
    ]:
        assert len(lists[name]["rows"]) == 10 and lists[name]["more"] is True
        section = re.search(rf'<tbody id="user-{name}-rows">(.*?)</tbody>', content, re.S).group(1)
        assert section.count(f'class="{name}-row"') == 10
        link = re.search(rf'<a href="([^"]+)" id="user-{name}-all"', content).group(1)
        assert link == f"{changelist}?user__id__exact={alice.pk}"
        listed = client.get(link)
        assert listed.status_code == 200
        assert {row.user_id for row in listed.context["cl"].result_list} == {alice.pk}
    # Generations carry their thumbnail.
    assert all(row["thumbnail"] == "https://cdn.example.com/out.png" for row in lists["generations"]["rows"])
    assert 'src="https://cdn.example.com/out.png"' in content
    # Sessions: the newest ten, still deletable from the form.
    sessions = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}["sessions"]
    assert len(sessions.formset.forms) == 10
    assert sessions.formset.forms[0].instance.user_agent == "device 11"


def test_a_person_with_nothing_gets_empty_lists(alice, staff, client):
    client.force_login(staff)
    response = client.get(page_url(alice))
    assert response.status_code == 200
    lists = {item["name"]: item for item in response.context["related"]}
    assert [len(lists[name]["rows"]) for name in ("ledger", "projects", "generations", "orders")] == [1, 0, 0, 0]
    assert lists["projects"]["more"] is False


def test_the_page_costs_the_same_queries_for_3_or_300_related_rows(alice, bob, staff, client):
    add_related_rows(alice, 3)
    add_related_rows(bob, 300)
    client.force_login(staff)
    client.get(page_url(alice))  # warm the content types and the session

    def queries_for(user) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page_url(user)).status_code == 200
        return len(captured)

    few, many = queries_for(alice), queries_for(bob)
    assert few == many
    assert many < 40


def test_a_grant_from_the_page_writes_a_ledger_row_by_the_staff_member(alice, staff, client):
    client.force_login(staff)
    response = client.post(credits_url(alice), {"amount": "50", "reason": "Apology for the outage"})
    assert response.status_code == 302
    assert response["Location"] == page_url(alice)
    assert balance(alice) == 150
    entry = CreditTransaction.objects.get(user=alice, type="grant")
    assert (entry.amount, entry.balance_after, entry.created_by_id) == (50, 150, staff.pk)
    assert entry.description == "Apology for the outage"
    assert messages_of(response) == [("success", "Grant of +50 credits for alice@example.com: balance now 150.")]
    log = LogEntry.objects.get(object_id=str(alice.pk))
    assert (log.user_id, log.action_flag) == (staff.pk, CHANGE)
    assert "Credits grant +50: Apology for the outage" in log.get_change_message()

    page = client.get(page_url(alice)).content.decode()
    assert re.search(r'id="user-credits-balance"[^>]*>150<', page)
    assert "Apology for the outage" in re.search(r'<tbody id="user-ledger-rows">(.*?)</tr>', page, re.S).group(1)


def test_a_negative_amount_is_an_adjustment(alice, staff, client):
    client.force_login(staff)
    response = client.post(credits_url(alice), {"amount": "-30", "reason": "Duplicate bonus"})
    assert response.status_code == 302
    assert balance(alice) == 70
    entry = CreditTransaction.objects.get(user=alice, type="adjustment")
    assert (entry.amount, entry.balance_after, entry.created_by_id) == (-30, 70, staff.pk)
    assert ("success", "Adjustment of -30 credits for alice@example.com: balance now 70.") in messages_of(response)


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        ("0", "Nothing", "amount", "Enter a non-zero number of credits."),
        ("12.5", "Half", "amount", "Enter a whole number."),
        ("abc", "Letters", "amount", "Enter a whole number."),
        ("", "Empty", "amount", "This field is required."),
        ("-101", "Too much", "amount", "Insufficient credits: the balance is 100, this needs 101."),
        ("2000000", "Huge", "amount", "Ensure this value is less than or equal to 1000000."),
        ("10", "", "reason", "This field is required."),
        ("10", "   ", "reason", "This field is required."),
    ],
)
def test_bad_input_is_an_error_on_its_field_and_writes_nothing(alice, staff, client, amount, reason, field, message):
    client.force_login(staff)
    before = CreditTransaction.objects.count()
    response = client.post(credits_url(alice), {"amount": amount, "reason": reason})
    assert response.status_code == 200
    form = response.context["credit_form"]
    assert form.errors == {field: [message]}
    assert message in response.content.decode().replace("&#x27;", "'")
    assert CreditTransaction.objects.count() == before
    assert balance(alice) == 100
    assert not LogEntry.objects.exists()


def test_the_credits_page_shows_the_form_on_a_get(alice, staff, client):
    client.force_login(staff)
    response = client.get(credits_url(alice))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="amount"' in content and 'id="id_credits_reason"' in content
    assert not CreditTransaction.objects.exclude(type="signup_bonus").exists()


def test_staff_without_the_credits_permission_are_refused(alice, client):
    helper = staff_with("accounts.view_user", "accounts.change_user", "credits.view_credittransaction")
    client.force_login(helper)
    page = client.get(page_url(alice))
    assert page.status_code == 200
    assert 'id="user-credits-form"' not in page.content.decode()
    assert 'id="user-credits-balance"' in page.content.decode()
    assert client.post(credits_url(alice), {"amount": "50", "reason": "Sneaky"}).status_code == 403
    assert client.get(credits_url(alice)).status_code == 403
    assert balance(alice) == 100


def test_staff_with_the_credits_permission_may_grant(alice, client):
    helper = staff_with("accounts.view_user", "credits.add_credittransaction")
    client.force_login(helper)
    page = client.get(page_url(alice))
    assert 'id="user-credits-form"' in page.content.decode()
    # No view permission on the ledger, generations, projects or orders: no lists.
    assert page.context["related"] == []
    assert client.post(credits_url(alice), {"amount": "5", "reason": "Support case"}).status_code == 302
    assert balance(alice) == 105


def test_an_unknown_user_is_a_404(staff, client):
    client.force_login(staff)
    response = client.post("/admin/accounts/user/00000000-0000-0000-0000-000000000000/credits/", {"amount": "5"})
    assert response.status_code == 404


def test_the_grant_is_csrf_protected(alice, staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post(credits_url(alice), {"amount": "50", "reason": "No token"}).status_code == 403
    assert balance(alice) == 100
    page = client.get(page_url(alice)).content.decode()
    token = re.search(r'id="user-credits-form".*?name="csrfmiddlewaretoken" value="([^"]+)"', page, re.S).group(1)
    response = client.post(credits_url(alice), {"amount": "50", "reason": "With token", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert balance(alice) == 150


def test_a_session_among_the_newest_ten_can_still_be_ended(alice, staff, client):
    add_related_rows(alice, 12)
    client.force_login(staff)
    page = client.get(page_url(alice))
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "password"}
    data.update({"raw_user_meta_data": "{}", "raw_app_meta_data": "{}", "is_active": "on"})
    data.update({"groups": [], "user_permissions": [], "profile-TOTAL_FORMS": "0", "profile-INITIAL_FORMS": "0"})
    listed = [
        f.instance
        for f in {f.formset.prefix: f for f in page.context["inline_admin_formsets"]}["sessions"].formset.forms
    ]
    data.update({"sessions-TOTAL_FORMS": str(len(listed)), "sessions-INITIAL_FORMS": str(len(listed))})
    for i, session in enumerate(listed):
        data.update({f"sessions-{i}-id": str(session.pk), f"sessions-{i}-user": str(alice.pk)})
    data["sessions-0-DELETE"] = "on"
    response = client.post(page_url(alice), data)
    assert response.status_code == 302
    remaining = set(Session.objects.filter(user=alice).values_list("user_agent", flat=True))
    assert remaining == {f"device {i}" for i in range(11)}  # the newest, device 11, is gone
