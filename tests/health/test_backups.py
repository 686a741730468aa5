"""Issue 21, backups that are proven: real pg_dumps of the test database into the data
folder and into S3 (moto's server over loopback), checksums, verification by a real
restore into a scratch database (and its failures), retention, the scheduled task and
the dbhealth check of the last verified backup's age."""

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from health import backups
from health.backups import BackupError, LocalStore, backup_prune, backup_take, backup_verify, last_verified_at, retained
from health.base import Level
from health.checks import BACKUP_ERROR_AGE, BACKUP_WARN_AGE, check_backups
from health.models import BackupRun
from health.tasks import BACKUP_CRON, backup_daily, backup_due, backup_taken_since
from velro.pg_client import libpq_params


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.VELRO_DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"


def admin_conn(**extra):
    params = libpq_params()
    return psycopg.connect(**params, autocommit=True, **extra)


def scratch_databases() -> list[str]:
    with admin_conn() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'velro\\_verify\\_%'").fetchall()
    return [row[0] for row in rows]


def committed_counts() -> dict:
    """Every table's rows as another session sees them (what pg_dump dumps)."""
    with admin_conn() as conn:
        return backups.count_rows(conn)


def run(*args) -> str:
    out = io.StringIO()
    call_command("backup", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- the data folder -----------------------------------------------------------------


def test_a_backup_goes_to_the_data_folder_with_its_checksum_and_row_counts(db, tmp_path):
    out = run()

    (dump,) = (tmp_path / "backups").glob("velro-*.dump")
    checksum = dump.with_name(dump.name + ".sha256")
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    assert checksum.read_text() == f"{digest}  {dump.name}\n"  # sha256sum -c reads it
    assert dump.read_bytes()[:5] == b"PGDMP" and dump.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [dump.name, checksum.name]  # no temp left
    assert f"Wrote {dump}" in out and "Retention" in out

    record = BackupRun.objects.get()
    assert (record.name, record.storage, record.location, record.status) == (dump.name, "local", str(dump), "taken")
    assert (record.size, record.sha256) == (dump.stat().st_size, digest)
    assert record.row_counts == committed_counts()
    assert record.row_counts["public.ai_models"] > 0 and "auth.users" in record.row_counts
    assert record.verify_ok is None


def test_backup_dir_moves_the_copies(db, settings, tmp_path):
    settings.BACKUP_DIR = str(tmp_path / "elsewhere")
    record = backup_take()
    assert record.location == str(tmp_path / "elsewhere" / record.name)
    assert (tmp_path / "elsewhere" / f"{record.name}.sha256").is_file()
    assert backup_verify().verify_ok is True


def test_verify_restores_the_newest_copy_checks_and_counts_it_and_records_it(db, tmp_path):
    run()
    newer = backup_take()
    assert scratch_databases() == []

    out = run("--verify")

    newer.refresh_from_db()
    assert newer.verify_ok is True and newer.verified_at is not None
    assert "match the dump" in newer.verify_detail and "0 ERROR" in newer.verify_detail
    for step in ("Checksum OK", "Restoring into the scratch database velro_verify_", "Row counts match", "Dropped"):
        assert step in out
    assert scratch_databases() == []  # dropped
    assert BackupRun.objects.exclude(pk=newer.pk).get().verify_ok is None  # the newest was the one verified
    assert last_verified_at() == newer.finished_at


def test_a_damaged_copy_fails_verification_on_its_checksum_and_is_recorded(db, tmp_path):
    record = backup_take()
    dump = tmp_path / "backups" / record.name
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    with pytest.raises(CommandError, match="checksum mismatch: .* the copy is damaged"):
        run("--verify")

    record.refresh_from_db()
    assert record.verify_ok is False and "checksum mismatch" in record.verify_detail
    assert last_verified_at() is None
    assert scratch_databases() == []
    # restore checks the checksum beside a file too.
    with pytest.raises(CommandError, match="does not match its checksum"):
        call_command("restore", str(dump), "--database-name", "velro_verify_never", stdout=io.StringIO())


def test_a_restore_that_fails_is_a_failed_verification_and_the_scratch_database_is_dropped(db, tmp_path):
    record = backup_take()
    dump = tmp_path / "backups" / record.name
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])  # cut short, checksum made to match
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    dump.with_name(dump.name + ".sha256").write_text(f"{digest}  {dump.name}\n")
    record.sha256 = digest
    record.save()

    with pytest.raises(BackupError, match="pg_restore failed"):
        backup_verify()

    record.refresh_from_db()
    assert record.verify_ok is False and "pg_restore failed" in record.verify_detail
    assert scratch_databases() == []


def test_row_counts_that_differ_from_the_dump_fail_verification(db):
    record = backup_take()
    record.row_counts = {**record.row_counts, "public.users": record.row_counts["public.users"] + 1}
    record.save()

    with pytest.raises(BackupError, match=r"row counts differ: public\.users: \d+ rows restored, \d+ in the dump"):
        backup_verify()
    record.refresh_from_db()
    assert record.verify_ok is False
    assert scratch_databases() == []


def test_a_health_error_in_the_restored_copy_fails_verification(db):
    # Committed, so in the dump: a grant dbhealth reports as an ERROR.
    with admin_conn() as conn:
        conn.execute("GRANT UPDATE (credits_balance) ON public.users TO authenticated")
    try:
        record = backup_take()
    finally:
        with admin_conn() as conn:
            conn.execute("REVOKE UPDATE (credits_balance) ON public.users FROM authenticated")

    with pytest.raises(BackupError, match="database health of the restored copy: grants: "):
        backup_verify()
    record.refresh_from_db()
    assert record.verify_ok is False and "grants" in record.verify_detail
    assert scratch_databases() == []


def test_json_prints_the_record_and_progress_goes_to_stderr(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("backup", "--json", stdout=out, stderr=err)
    taken = json.loads(out.getvalue())
    assert taken["status"] == "taken" and taken["verify_ok"] is None and taken["rows"] > 0
    assert "Counted" in err.getvalue()

    out = io.StringIO()
    call_command("backup", "--verify", "--json", stdout=out, stderr=io.StringIO())
    verified = json.loads(out.getvalue())
    assert (verified["name"], verified["verify_ok"]) == (taken["name"], True)


def test_nothing_to_verify_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no backup to verify"):
        run("--verify")


# --- S3 -------------------------------------------------------------------------------


@pytest.fixture
def bucket(settings, moto_s3):
    name = moto_s3.new_bucket()
    moto_s3.use(settings, name)
    return name


def test_with_s3_media_backups_go_to_the_bucket_privately_and_verify_from_there(db, moto_s3, bucket, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from velro.media_links import signed_media_url

    record = backup_take()
    keys = moto_s3.keys(bucket)
    assert keys == [f"backups/{record.name}", f"backups/{record.name}.sha256"]
    assert record.location == f"s3://{bucket}/backups/{record.name}"
    assert not (tmp_path / "backups").exists()  # nothing kept on the database machine
    client = moto_s3.client()
    grants = client.get_object_acl(Bucket=bucket, Key=keys[0])["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]  # the owner alone: private
    assert grants[0]["Grantee"]["Type"] == "CanonicalUser"
    body = client.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == record.sha256

    verified = backup_verify()
    assert verified.pk == record.pk and verified.verify_ok is True
    assert scratch_databases() == []

    # Media code never hands a backup out, and media_gc never takes one for an orphan.
    with pytest.raises(ValueError, match="no media link to a backup"):
        signed_media_url(keys[0])
    orphan = default_storage.save("generations/x/gone/0.png", ContentFile(b"left behind"))
    call_command("media_gc", "--min-age", "0", "--delete", stdout=io.StringIO(), stderr=io.StringIO())
    assert moto_s3.keys(bucket) == keys and orphan not in moto_s3.keys(bucket)


def test_a_failed_upload_leaves_no_copy_and_records_the_failure(db, moto_s3, settings, tmp_path):
    moto_s3.use(settings, "velro-no-such-bucket")

    with pytest.raises(BackupError, match="cannot store the copy at s3://velro-no-such-bucket/backups/"):
        backup_take()

    record = BackupRun.objects.get()
    assert record.status == "failed" and "NoSuchBucket" in record.error and record.finished_at
    assert not list(tmp_path.rglob("*.dump"))


def test_a_damaged_copy_in_s3_fails_verification(db, moto_s3, bucket):
    record = backup_take()
    moto_s3.client().put_object(Bucket=bucket, Key=f"backups/{record.name}", Body=b"PGDMP not the same bytes")

    with pytest.raises(BackupError, match="checksum mismatch"):
        backup_verify()
    record.refresh_from_db()
    assert record.verify_ok is False


# --- retention ------------------------------------------------------------------------


def at(day: str, hour: int = 3) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_retention_keeps_the_newest_of_each_recent_day_then_of_each_older_iso_week():
    # Two copies a day (03:00 and 15:00) from Mon 2026-10-05 to Sun 2026-12-06.
    start = at("2026-10-05")
    copies = [
        (f"{start + timedelta(days=d, hours=h):%Y%m%d-%H}", start + timedelta(days=d, hours=h))
        for d in range(63)
        for h in (0, 12)
    ]

    keep = retained(copies, keep_daily=7, keep_weekly=4)

    daily = [f"2026{m}-15" for m in ("1206", "1205", "1204", "1203", "1202", "1201", "1130")]
    # Older than Mon 30 Nov (ISO week 49's daily copies): the newest of weeks 48, 47, 46, 45.
    weekly = ["20261129-15", "20261122-15", "20261115-15", "20261108-15"]
    assert keep == set(daily + weekly)

    protected = retained(copies, keep_daily=7, keep_weekly=4, protect=["20261005-03", "not-a-copy"])
    assert protected == keep | {"20261005-03"}  # the newest verified one stays, whatever its age
    assert retained(copies, keep_daily=1, keep_weekly=0) == {"20261206-15"}


def test_retention_counts_days_that_have_copies_not_calendar_days():
    copies = [("a", at("2026-12-06")), ("b", at("2026-12-01")), ("c", at("2026-11-20")), ("d", at("2026-11-19"))]
    assert retained(copies, keep_daily=2, keep_weekly=1) == {"a", "b", "c"}  # c: newest of week 47
    assert retained([], keep_daily=7, keep_weekly=4) == set()


def test_prune_deletes_old_copies_and_their_checksums_never_the_newest_verified_one(db, settings, tmp_path):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY = 2, 1
    store = LocalStore(tmp_path / "backups")
    store.root.mkdir()
    now = timezone.now()
    ages = [0, 1, 2, 9, 10, 40]  # days
    names = [backups.backup_name(now - timedelta(days=days)) for days in ages]
    for name in names:
        (store.root / name).write_bytes(b"PGDMP")
        (store.root / f"{name}.sha256").write_text("x  name\n")
    (store.root / "notes.txt").write_text("not a backup")
    for name, days in zip(names, ages, strict=True):
        BackupRun.objects.create(
            name=name, storage="local", status="taken", started_at=now - timedelta(days=days), verify_ok=days == 40
        )

    deleted = backup_prune(store=store)

    # Daily: the copies of today and yesterday. Weekly (1): of the older ones, the newest
    # (2 days). Protected: the newest verified one (40 days). Deleted: 9 and 10 days.
    kept = {name for name, days in zip(names, ages, strict=True) if days in (0, 1, 2, 40)}
    assert set(deleted) == set(names) - kept
    remaining = set(store.names())
    assert remaining == kept | {f"{name}.sha256" for name in kept} | {"notes.txt"}
    assert set(BackupRun.objects.filter(pruned_at__isnull=False).values_list("name", flat=True)) == set(deleted)


# --- the schedule ---------------------------------------------------------------------


def test_the_task_is_ticked_hourly_and_takes_the_days_backup_once_with_the_whole_chain(db, settings):
    from procrastinate.contrib.django import app

    (periodic,) = [p for key, p in app.periodic_registry.periodic_tasks.items() if key[0] == backup_daily.name]
    assert periodic.cron == BACKUP_CRON == "0 * * * *"
    assert (backup_daily.lock, backup_daily.queueing_lock) == ("backup", "backup")
    tick = int(timezone.now().timestamp())

    result = backup_daily(timestamp=tick)

    record = BackupRun.objects.get()
    assert result == {"name": record.name, "size": record.size, "verified": True}
    assert record.verify_ok is True and record.status == "taken"
    assert scratch_databases() == []
    # The next hours' ticks find the day's backup and take none.
    due = backup_due(timezone.now())
    assert backup_daily(timestamp=tick + 3600) == {
        "skipped": f"the backup due {due:%Y-%m-%d %H:%M} UTC was started at {record.started_at:%H:%M} UTC"
    }
    assert BackupRun.objects.count() == 1


def test_the_day_is_due_at_backup_hour_utc(settings):
    settings.BACKUP_HOUR = 3
    day = datetime(2026, 12, 7, tzinfo=UTC)
    assert backup_due(day.replace(hour=3)) == day.replace(hour=3)
    assert backup_due(day.replace(hour=17, minute=30)) == day.replace(hour=3)
    assert backup_due(day.replace(hour=2, minute=59)) == day.replace(hour=3) - timedelta(days=1)
    # Any time zone in, UTC out.
    assert backup_due(datetime(2026, 12, 7, 4, 30, tzinfo=timezone.get_fixed_timezone(120))) == (
        day.replace(hour=3) - timedelta(days=1)
    )


def test_a_day_whose_backup_was_missed_is_caught_up_and_one_already_tried_is_not(db, settings):
    """A worker that was down at BACKUP_HOUR: the first hourly tick after it is back takes
    the day's backup. A failed one is not tried again every hour (the next day's run is
    its retry), and a copy written elsewhere by hand (--output) is not the day's."""
    settings.BACKUP_HOUR = 3
    due = datetime(2026, 12, 7, 3, tzinfo=UTC)
    yesterday = BackupRun.objects.create(
        name="y.dump", storage="local", status="taken", started_at=due - timedelta(hours=23)
    )
    assert backup_taken_since(due - timedelta(days=1)) == yesterday  # yesterday's day had its backup
    assert backup_taken_since(due) is None  # today's is missing: the next tick takes it
    BackupRun.objects.create(name="elsewhere.dump", storage="file", status="taken", started_at=due + timedelta(hours=1))
    assert backup_taken_since(due) is None
    failed = BackupRun.objects.create(name="f.dump", storage="s3", status="failed", started_at=due + timedelta(hours=2))
    assert backup_taken_since(due) == failed


def test_the_workers_periodic_deferrer_defers_it_every_hour(settings):
    """What `procrastinate worker` does in its periodic deferrer (a side task every v3
    worker starts): each hour's tick is due with that timestamp, and a worker that starts
    more than 10 minutes past a tick (procrastinate's MAX_DELAY) gets the next one — which
    catches up a missed day (above)."""
    from procrastinate.contrib.django import app
    from procrastinate.periodic import PeriodicDeferrer

    tick = datetime(2026, 12, 7, settings.BACKUP_HOUR, tzinfo=UTC).timestamp()

    def due(at: float) -> list:
        deferrer = PeriodicDeferrer(registry=app.periodic_registry)
        return [stamp for task, stamp in deferrer.get_previous_tasks(at=at) if task.task is backup_daily]

    assert due(tick + 5) == [tick]
    assert due(tick + 9 * 60) == [tick]
    assert due(tick + 11 * 60) == []
    assert due(tick + 2 * 3600 + 5) == [tick + 2 * 3600]


def test_a_second_backup_while_one_runs_is_skipped(db):
    with backups.backup_lock():
        assert backup_daily(timestamp=0) == {
            "skipped": "another backup of this database is running; try again when it has finished"
        }
        with pytest.raises(CommandError, match="another backup"):
            run()
    assert not BackupRun.objects.exists()


def test_taking_the_lock_clears_what_a_killed_run_left(db):
    """A run killed mid-way (SIGKILL, a lost machine) leaves a row "running" and maybe a
    scratch database: with the lock held nothing else runs, so the row is failed and a
    scratch database older than a day dropped (a younger one may be another database's
    verification on the same server)."""
    stale = BackupRun.objects.create(name="killed.dump", storage="local", started_at=timezone.now())
    young = f"velro_verify_{timezone.now():%Y%m%d%H%M%S}_abc123"
    old = "velro_verify_20200101000000_abc123"
    with admin_conn() as conn:
        for name in (young, old):
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with backups.backup_lock():
            pass
        assert scratch_databases() == [young]
    finally:
        with admin_conn() as conn:
            for name in (young, old):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    stale.refresh_from_db()
    assert stale.status == "failed" and stale.error.startswith("interrupted")


def test_procrastinates_worker_runs_a_deferred_backup(worker, sql):
    backup_daily.defer(timestamp=0)

    worker()

    assert sql("SELECT status, verify_ok FROM public.backup_runs") == [("taken", True)]
    assert sql("SELECT count(*) FROM public.procrastinate_jobs WHERE task_name = %s", [backup_daily.name]) == [(0,)]


# --- dbhealth -------------------------------------------------------------------------


def verified(hours: float, **fields) -> BackupRun:
    finished = timezone.now() - timedelta(hours=hours)
    return BackupRun.objects.create(
        name=f"v{hours}",
        storage="local",
        status="taken",
        started_at=finished,
        finished_at=finished,
        verify_ok=True,
        **fields,
    )


def test_dbhealth_reports_the_age_of_the_last_verified_backup(db):
    verified(10)
    check = check_backups(connection.cursor())
    assert check.level == Level.OK and check.summary.startswith("the last verified backup is 10.0 h old")

    BackupRun.objects.all().delete()
    verified(BACKUP_WARN_AGE.total_seconds() / 3600 + 1)
    assert check_backups(connection.cursor()).level == Level.WARN

    BackupRun.objects.all().delete()
    verified(BACKUP_ERROR_AGE.total_seconds() / 3600 + 1)
    assert check_backups(connection.cursor()).level == Level.ERROR

    # A newer backup that failed does not reset the age, and is shown.
    BackupRun.objects.all().delete()
    verified(5)
    BackupRun.objects.create(
        name="broken", storage="local", status="failed", started_at=timezone.now(), error="disk full"
    )
    check = check_backups(connection.cursor())
    assert check.level == Level.WARN and "the newest backup failed" in check.summary
    assert check.details[-1]["detail"] == "disk full"


def test_no_verified_backup_is_ok_on_a_new_database_and_a_warning_later(db, sql):
    check = check_backups(connection.cursor())
    assert check.level == Level.OK and check.summary.startswith("no verified backup yet; the database is")

    sql("UPDATE django_migrations SET applied = now() - interval '3 days'")
    check = check_backups(connection.cursor())
    assert check.level == Level.WARN and "no verified backup yet" in check.summary


def test_last_verified_at_reads_one_entry_of_its_partial_index(db, sql):
    verified(3)
    sql("SET LOCAL enable_seqscan = off")
    query, params = (
        BackupRun.objects.filter(verify_ok=True, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at")[:1]
        .query.sql_with_params()
    )
    plan = "\n".join(row[0] for row in sql(f"EXPLAIN {query}", params))
    assert "Scan using backup_runs_verified_idx" in plan and "Sort" not in plan  # (an index-only scan)


# --- the admin ------------------------------------------------------------------------


def test_the_admin_lists_backups_read_only_with_status_age_and_size(client, staff):
    verified(5, size=3 * 1024 * 1024)
    client.force_login(staff)

    page = client.get("/admin/health/backuprun/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "v5" in text and "verified" in text and "5.0 h" in text and "3.0 MB" in text
    assert client.get("/admin/health/backuprun/add/").status_code == 403
    change = client.get(f"/admin/health/backuprun/{BackupRun.objects.get().pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BACKUP_HOUR", "24", "BACKUP_HOUR must be an hour of the day"),
        ("BACKUP_SCHEDULE", "hourly", "BACKUP_SCHEDULE must be daily or off"),
        ("BACKUP_KEEP_DAILY", "0", "BACKUP_KEEP_DAILY must be 1 or more"),
    ],
)
def test_bad_backup_settings_stop_the_process_with_a_clear_message(db, variable, value, message):
    import subprocess
    import sys

    from tests.helpers import ROOT, database_url, manage_env

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=manage_env(database_url(), **{variable: value}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and message in result.stderr
