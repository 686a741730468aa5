"""The sync triggers on auth.users: every way an identity is made gets one profile, the
sign-up bonus and its ledger row; updates carry over without touching credits."""

import threading

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from accounts.models import Profile
from credits.models import CreditTransaction
from tests.factories import PASSWORD

User = get_user_model()
BONUS = 100


def assert_synced(user, *, full_name=None):
    profile = Profile.objects.get(pk=user.pk)
    assert profile.email == user.email
    assert profile.credits_balance == BONUS
    if full_name is not None:
        assert profile.full_name == full_name
    ledger = list(CreditTransaction.objects.filter(user=user).values_list("type", "amount", "balance_after"))
    assert ledger == [("signup_bonus", BONUS, BONUS)]
    return profile


def test_create_user_gets_profile_bonus_and_ledger_row(db):
    user = User.objects.create_user(email="Ann@Example.COM", password=PASSWORD)
    assert user.email == "ann@example.com"
    assert_synced(user, full_name="ann")


def test_createsuperuser_command_gets_profile(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", "--email", "root@example.com", verbosity=0)
    user = User.objects.get(email="root@example.com")
    assert user.is_superuser and user.is_staff
    assert_synced(user, full_name="root")


def test_register_api_gets_profile(db, api):
    response = api.post(
        "/api/v1/auth/register",
        {"email": "reg@example.com", "password": PASSWORD, "full_name": "Reggie Stone"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert_synced(User.objects.get(email="reg@example.com"), full_name="Reggie Stone")


def test_admin_add_form_gets_profile(db, client, staff):
    client.force_login(staff)
    response = client.post(
        "/admin/accounts/user/add/",
        {"email": "added@example.com", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert_synced(User.objects.get(email="added@example.com"), full_name="added")


def test_raw_sql_insert_gets_profile(db, sql):
    (row,) = sql(
        "INSERT INTO auth.users (email, raw_user_meta_data) VALUES (%s, %s) RETURNING id",
        ["raw@example.com", '{"name": "Raw Row", "picture": "https://img.example/p.png"}'],
    )
    profile = assert_synced(User.objects.get(pk=row[0]), full_name="Raw Row")
    assert profile.avatar_url == "https://img.example/p.png"


@pytest.mark.parametrize(
    ("meta", "full_name", "avatar_url"),
    [
        ({"full_name": "Full Name", "name": "Name", "display_name": "Display"}, "Full Name", ""),
        ({"name": "Just Name", "display_name": "Display"}, "Just Name", ""),
        ({"display_name": "Display Only"}, "Display Only", ""),
        ({"full_name": "   ", "name": ""}, "meta", ""),
        ({}, "meta", ""),
        (
            {"avatar_url": "https://a.example/1.png", "picture": "https://a.example/2.png"},
            "meta",
            "https://a.example/1.png",
        ),
        ({"picture": "https://a.example/2.png"}, "meta", "https://a.example/2.png"),
        ({"full_name": "x" * 400}, "x" * 255, ""),
    ],
    ids=[
        "full_name-wins",
        "name",
        "display_name",
        "blank-falls-back",
        "empty",
        "avatar_url-wins",
        "picture",
        "too-long",
    ],
)
def test_metadata_extraction(db, sql, meta, full_name, avatar_url):
    import json

    (row,) = sql(
        "INSERT INTO auth.users (email, raw_user_meta_data) VALUES ('meta@example.com', %s) RETURNING id",
        [json.dumps(meta)],
    )
    profile = Profile.objects.get(pk=row[0])
    assert (profile.full_name, profile.avatar_url) == (full_name, avatar_url)
    assert profile.metadata == meta


@pytest.mark.parametrize("meta", ["null", '"a string"', "[1, 2]"])
def test_non_object_metadata_never_blocks_sign_up(db, sql, meta):
    (row,) = sql(
        "INSERT INTO auth.users (email, raw_user_meta_data) VALUES ('odd@example.com', %s::jsonb) RETURNING id",
        [meta],
    )
    profile = Profile.objects.get(pk=row[0])
    assert (profile.full_name, profile.metadata, profile.credits_balance) == ("odd", {}, BONUS)


class TestUpdateSync:
    def test_email_and_metadata_changes_reach_the_profile(self, alice):
        alice.email = "alice.new@example.com"
        alice.raw_user_meta_data = {"full_name": "Alice Renamed", "avatar_url": "https://a.example/new.png", "k": 1}
        alice.save()
        profile = Profile.objects.get(pk=alice.pk)
        assert profile.email == "alice.new@example.com"
        assert profile.full_name == "Alice Renamed"
        assert profile.avatar_url == "https://a.example/new.png"
        assert profile.metadata["k"] == 1

    def test_a_name_the_person_edited_is_kept(self, alice):
        Profile.objects.filter(pk=alice.pk).update(full_name="Call Me Al")
        alice.raw_user_meta_data = {"full_name": "Provider Name"}
        alice.save()
        assert Profile.objects.get(pk=alice.pk).full_name == "Call Me Al"

    @pytest.mark.breaks_ledger
    def test_updates_never_touch_credits_or_plan(self, alice):
        Profile.objects.filter(pk=alice.pk).update(credits_balance=7, current_plan="pro")
        alice.email = "changed@example.com"
        alice.raw_user_meta_data = {"full_name": "X", "credits_balance": 999999, "current_plan": "enterprise"}
        alice.is_active = False
        alice.save()
        profile = Profile.objects.get(pk=alice.pk)
        assert (profile.credits_balance, profile.current_plan, profile.is_active) == (7, "pro", False)
        assert CreditTransaction.objects.filter(user=alice).count() == 1

    def test_a_sign_in_does_not_rewrite_the_profile(self, alice, sql):
        before = Profile.objects.get(pk=alice.pk).updated_at
        sql("UPDATE auth.users SET last_sign_in_at = now() WHERE id = %s", [alice.pk])
        assert Profile.objects.get(pk=alice.pk).updated_at == before

    def test_deleting_the_identity_in_sql_removes_profile_and_ledger(self, alice, sql):
        sql("DELETE FROM auth.users WHERE id = %s", [alice.pk])
        assert not Profile.objects.filter(pk=alice.pk).exists()
        assert not CreditTransaction.objects.filter(user_id=alice.pk).exists()


def test_a_profile_made_first_is_upserted_with_one_bonus(db, sql):
    # The FK is deferrable, so within one transaction the profile can come first: the
    # trigger's INSERT … ON CONFLICT must neither fail nor duplicate.
    sql("SET CONSTRAINTS users_id_fkey DEFERRED")
    sql("INSERT INTO public.users (id, email) VALUES ('00000000-0000-0000-0000-00000000000a', 'first@example.com')")
    sql("INSERT INTO auth.users (id, email) VALUES ('00000000-0000-0000-0000-00000000000a', 'first@example.com')")
    sql("SET CONSTRAINTS users_id_fkey IMMEDIATE")
    user = User.objects.get(email="first@example.com")
    assert_synced(user)


def test_only_one_signup_bonus_per_person_is_possible(alice, sql):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        sql(
            "INSERT INTO public.credit_transactions (user_id, type, amount, balance_after) "
            "VALUES (%s, 'signup_bonus', 100, 200)",
            [alice.pk],
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_inserts_of_one_identity_give_one_profile_and_one_bonus():
    """Two connections insert the same identity at once: one wins, the other fails on
    auth.users' primary key, and there is one profile and one bonus."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    user_id = "00000000-0000-0000-0000-0000000000cc"
    insert = "INSERT INTO auth.users (id, email) VALUES (%s, %s)"
    outcomes = []

    first = psycopg.connect(**params)
    first.execute(insert, [user_id, "race@example.com"])  # holds the row, uncommitted

    def second():
        with psycopg.connect(**params, autocommit=True) as conn:
            try:
                conn.execute(insert, [user_id, "race@example.com"])
                outcomes.append("inserted")
            except psycopg.errors.UniqueViolation:
                outcomes.append("unique_violation")

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive(), "the second insert should wait for the first transaction"
    first.commit()
    first.close()
    thread.join(timeout=10)

    assert outcomes == ["unique_violation"]
    assert Profile.objects.filter(pk=user_id).count() == 1
    assert list(CreditTransaction.objects.filter(user_id=user_id).values_list("type", "amount")) == [
        ("signup_bonus", BONUS)
    ]
