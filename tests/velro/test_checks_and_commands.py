import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError

from accounts.models import User
from velro.checks import check_database


def test_the_project_passes_its_own_checks():
    assert check_database(None) == []


def test_atomic_requests_off_is_an_error(settings):
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
    try:
        assert [e.id for e in check_database(None)] == ["velro.E002"]
        with pytest.raises(SystemCheckError):
            call_command("check")
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True


def test_ensure_dev_admin_prints_the_login_once_and_keeps_it(db, settings, capsys):
    settings.DEBUG = True
    call_command("ensure_dev_admin")
    first = capsys.readouterr().out
    assert "admin@velro.local" in first and "password:" in first
    password = first.split("password:")[1].split()[0]
    user = User.objects.get(email="admin@velro.local")
    assert user.is_superuser and user.check_password(password)
    assert user.profile.credits_balance == 100

    call_command("ensure_dev_admin")
    second = capsys.readouterr().out
    assert "exists" in second and "password:" not in second
    user.refresh_from_db()
    assert user.check_password(password)


def test_ensure_dev_admin_refuses_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("ensure_dev_admin")
    assert not User.objects.exists()
