"""Fixtures of the accounts tests."""

import pytest


@pytest.fixture(autouse=True)
def _no_internet_password_check(settings):
    # Tests never call the real Have I Been Pwned API: the validator uses its bundled list
    # unless a test turns the API on against the local fake (tests/accounts/test_passwords.py).
    settings.PASSWORD_BREACH_CHECK = False
