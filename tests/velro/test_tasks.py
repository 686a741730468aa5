"""velro.tasks: media deleted in the background by procrastinate's worker, and only once the
transaction that stopped pointing at them has committed."""

import signal
import subprocess
import sys
import time

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import ProgrammingError, transaction
from procrastinate.contrib.django.models import ProcrastinateJob
from procrastinate.exceptions import ConnectorException

from tests.conftest import as_role
from tests.helpers import ROOT, database_url, manage_env
from velro.tasks import delete_media, delete_media_on_commit

TASK = "velro.tasks.delete_media"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def media():
    """``media(n)`` → the storage names of ``n`` new files."""

    def make(count: int) -> list[str]:
        return [default_storage.save(f"outputs/file-{i}.png", ContentFile(b"png")) for i in range(count)]

    return make


def jobs():
    return list(ProcrastinateJob.objects.filter(task_name=TASK).values_list("status", "args"))


def test_committed_deletion_runs_in_the_worker(worker, media):
    names = media(2)
    with transaction.atomic():
        delete_media_on_commit([*names, "outputs/already-gone.png"])
        assert jobs() == []  # not before the commit: the row may still be rolled back
    assert jobs() == [("todo", {"names": [*names, "outputs/already-gone.png"]})]

    worker()

    assert not any(default_storage.exists(name) for name in names)
    # A successful job is deleted (PROCRASTINATE_WORKER_DEFAULTS); a missing file is no failure.
    assert jobs() == []


def test_the_worker_command_picks_up_a_job_and_stops_on_sigterm(worker, media, settings):
    """``manage.py procrastinate worker`` as make run / make worker start it: it hears
    of a new job (LISTEN/NOTIFY), runs it, and SIGTERM (make's trap) stops it cleanly."""
    (name,) = media(1)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "procrastinate", "worker"],
        cwd=ROOT,
        env=manage_env(database_url(), MEDIA_ROOT=str(settings.MEDIA_ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        delete_media_on_commit([name])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and default_storage.exists(name):
            time.sleep(0.1)
        assert not default_storage.exists(name)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "ended with status: Success" in out
    assert "Stopped worker" in out


def test_a_failing_deletion_is_kept_for_a_retry(worker, media, monkeypatch):
    (name,) = media(1)

    def storage_down(name):
        raise OSError("storage unreachable")

    monkeypatch.setattr(default_storage, "delete", storage_down)
    delete_media_on_commit([name])  # outside a transaction: deferred at once

    worker()

    # Scheduled again later (RetryStrategy), not lost, and the file is still there.
    (job,) = ProcrastinateJob.objects.filter(task_name=TASK)
    assert (job.status, job.attempts) == ("todo", 1)
    assert job.scheduled_at is not None
    assert default_storage.exists(name)


def test_rolled_back_transaction_defers_nothing(db, media, django_capture_on_commit_callbacks):
    (name,) = media(1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            delete_media_on_commit([name])
            raise RuntimeError("the row's delete failed")
    assert callbacks == []
    assert jobs() == []
    assert default_storage.exists(name)


def test_commit_defers_one_job_through_djangos_connection(db, media, django_capture_on_commit_callbacks):
    names = media(2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        delete_media_on_commit(["", *names])
    assert len(callbacks) == 1
    # Empty names (a row without a file) are dropped before they reach the job.
    assert jobs() == [("todo", {"names": names})]


def test_nothing_to_delete_defers_nothing(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        delete_media_on_commit(["", ""])
    assert callbacks == []


def test_a_request_under_rls_defers_after_its_transaction(db, alice, media, django_capture_on_commit_callbacks):
    """A view runs as ``authenticated``, which may not touch the queue; the job is written
    after the commit, when the connection is the owner again."""
    (name,) = media(1)
    with django_capture_on_commit_callbacks(execute=True):
        with as_role("authenticated", alice):
            delete_media_on_commit([name])
    assert jobs() == [("todo", {"names": [name]})]


def test_missing_file_is_not_an_error(db, media):
    (name,) = media(1)
    delete_media(names=[name, "outputs/never-existed.png"])
    delete_media(names=[name])  # a second run (a retry) finds nothing left: fine
    assert not default_storage.exists(name)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_read_the_queue(alice, role, media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        delete_media_on_commit(media(1))
    user = alice if role == "authenticated" else None
    for table in ("procrastinate_jobs", "procrastinate_events", "procrastinate_workers"):
        with pytest.raises(ProgrammingError, match="permission denied"), as_role(role, user) as cursor:
            cursor.execute(f"SELECT count(*) FROM public.{table}")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_defer(alice, role):
    user = alice if role == "authenticated" else None
    with pytest.raises(ConnectorException) as failure, as_role(role, user):
        delete_media.defer(names=["outputs/someone-elses.png"])
    assert isinstance(failure.value.__cause__, psycopg.errors.InsufficientPrivilege)
