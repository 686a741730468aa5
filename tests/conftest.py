"""Shared fixtures: named people (alice owns things, bob must never see them, staff runs
the admin), an API client, and helpers to run SQL as the API roles."""

import contextlib
import json

import jwt
import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Session
from accounts.sessions import access_token_for
from tests.factories import UserFactory
from velro.jwt_keys import key_set, new_private_jwk
from velro.rls import transaction_role

# One ES256 key signs the run's access tokens, whatever .env or the data folder hold.
TEST_JWT_KEYS = json.dumps({"keys": [new_private_jwk()]})


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Tests only: the real hasher costs ~0.3 s per password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _test_jwt_keys(settings):
    settings.JWT_ALGORITHM = "ES256"
    settings.JWT_SIGNING_KEYS = TEST_JWT_KEYS


@pytest.fixture(autouse=True)
def _no_internet_password_check(settings):
    # Never the real Have I Been Pwned API (tests/accounts/test_passwords.py turns the
    # check on against a local fake server).
    settings.PASSWORD_BREACH_CHECK = False


@pytest.fixture(autouse=True)
def _admin_two_factor_off(settings):
    # The admin's two-factor step is required only where a test turns it on
    # (tests/accounts/test_staff_2fa.py): force_login'ed staff go straight in, whatever
    # ADMIN_2FA_REQUIRED the environment or .env holds.
    settings.ADMIN_2FA_REQUIRED = "off"


@pytest.fixture(autouse=True)
def _ledger_invariant(request):
    """After every test that touched the database: balance == sum(ledger) and the newest
    balance_after == balance, and the generation counts match the generations, for
    everyone. Tests that corrupt the books on purpose carry the ``breaks_ledger`` marker."""
    name = next((f for f in ("transactional_db", "db") if f in request.fixturenames), None)
    if name is None or request.node.get_closest_marker("breaks_ledger"):
        yield
        return
    request.getfixturevalue(name)  # set up first, so torn down after this check
    yield
    from credits.selectors import credits_invariant_violations
    from generations.selectors import generation_stats_drift

    assert credits_invariant_violations() == []
    # And everyone's generation counts (generation_stats, kept by triggers) are the truth.
    assert generation_stats_drift()[1] == []


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", raw_user_meta_data={"full_name": "Alice Owner"})


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", raw_user_meta_data={"full_name": "Bob Stranger"})


@pytest.fixture
def staff(db):
    return UserFactory(email="staff@example.com", is_staff=True, is_superuser=True, raw_user_meta_data={})


@pytest.fixture
def api():
    return APIClient()


def bearer(user) -> dict:
    """The Authorization header of a new session of ``user``: the access token signing in
    gives, without recording a sign-in (tests compare stored data around requests)."""
    access, _ = access_token_for(user, Session.objects.create(user=user))
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def signed(claims: dict) -> str:
    """``claims`` signed as the app signs access tokens: the run's ES256 key, named by kid."""
    key = key_set().signing
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})


@pytest.fixture
def api_as():
    """``api_as(user)`` → an APIClient that sends that user's real access token."""

    def make(user):
        client = APIClient()
        client.credentials(**bearer(user))
        return client

    return make


@contextlib.contextmanager
def as_role(role: str, user=None):
    """Run the block's SQL as ``role`` with the claims the RLS glue would publish.

    Inside a savepoint (velro.rls.transaction_role), so a permission error can be
    asserted and the test goes on; leaving it restores the owner role.
    """
    claims = {"role": role}
    if user is not None:
        claims.update(sub=str(user.pk), email=user.email)
    with transaction_role(role, json.dumps(claims)) as cursor:
        yield cursor


@pytest.fixture
def sql():
    """A cursor as the owner connection, returning all rows of one statement."""

    def run(statement, params=None):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    return run


@pytest.fixture
def fake_cdn():
    """A provider's CDN on loopback (tests/fakes/cdn.py)."""
    from tests.fakes.cdn import FakeCDN

    with FakeCDN() as cdn:
        yield cdn


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server on loopback, for the session (tests/fakes/s3.py)."""
    from tests.fakes.s3 import MotoS3

    with MotoS3() as server:
        yield server


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory):
    """SeaweedFS, a real S3 server that checks signatures, for the session."""
    from tests.fakes.s3 import SeaweedS3

    with SeaweedS3(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def worker(transactional_db, sql):
    """``worker()`` runs procrastinate's worker until the queue is empty, on its own
    connections (as ``manage.py procrastinate worker`` does), so it sees committed jobs only.

    The job tables are not Django models the test flush empties (procrastinate's are
    unmanaged): what a test leaves there is deleted here."""

    from procrastinate.contrib.django import app

    def run():
        with app.replace_connector(app.connector.get_worker_connector()):
            app.run_worker(wait=False, install_signal_handlers=False, listen_notify=False)

    yield run
    sql("DELETE FROM public.procrastinate_jobs")


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback that Django's mail is pointed at (tests/fakes/smtp.py)."""
    from tests.fakes.smtp import SMTPListener

    with SMTPListener() as listener:
        listener.use(settings)
        yield listener
