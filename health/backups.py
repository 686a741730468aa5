"""Backups that are proven (issue 21; README, "Backups").

* :func:`backup_take` — ``pg_dump -Fc`` of the database, in the snapshot of a REPEATABLE
  READ transaction that also counts every table's rows (``pg_export_snapshot()`` and
  ``pg_dump --snapshot``): the counts recorded are exactly what the dump holds. Written
  to a local temporary file, then stored under its real name (an atomic rename in the
  data folder; one S3 PUT or multipart upload, which appears only when complete), then a
  ``.sha256`` file beside it, then recorded in :class:`~health.models.BackupRun`.
* :func:`backup_prune` — retention: the newest copy of each of the last
  ``BACKUP_KEEP_DAILY`` days, then the newest of each of ``BACKUP_KEEP_WEEKLY`` older
  ISO weeks; never the newest verified copy.
* :func:`backup_verify` — the newest copy fetched, its checksum checked, restored into a
  scratch database on the same server, the health checks run there, its row counts
  compared with the recorded ones, the scratch database dropped (always), the result
  recorded.
* :func:`last_verified_at` — the finish time of the newest verified backup: one row of a
  partial index, for ``dbhealth`` and the metrics.

Where copies go: with ``MEDIA_STORAGE=s3`` the media bucket under ``backups/`` (private:
no ACL, never presigned), else ``<VELRO_DATA_DIR>/backups/``. Only one backup runs at a
time on a database (a PostgreSQL advisory lock), whoever starts it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.module_loading import import_string
from psycopg import sql

from health.base import Level
from health.models import BackupRun
from velro.pg_client import (
    CHECKSUM_SUFFIX,
    checksum_text,
    ensure_roles,
    find_binary,
    human_size,
    is_dump,
    libpq_params,
    parse_checksum,
    pg_dump,
    pg_restore,
    server_major,
    sha256_file,
)
from velro.storage import BACKUP_PREFIX

Progress = Callable[[str], None]

# velro-20261207-030000-123456.dump: the UTC time the backup started, to the microsecond.
NAME_FORMAT = "velro-%Y%m%d-%H%M%S-%f.dump"
NAME_PATTERN = re.compile(r"^velro-(\d{8}-\d{6}-\d{6})\.dump$")
SCRATCH_PREFIX = "velro_verify_"
# Any number that no other advisory lock of this project uses: "velro backup".
LOCK_KEY = 0x76656C726F_4B


class BackupError(Exception):
    """A backup or its verification failed; the message says why, for a person."""


class BackupBusy(BackupError):
    """Another backup is running on this database."""


def _quiet(_: str) -> None:
    pass


def backup_name(started: datetime) -> str:
    return started.astimezone(UTC).strftime(NAME_FORMAT)


def taken_at(name: str) -> datetime | None:
    """When the backup ``name`` started (from the name), or None for another file."""
    match = NAME_PATTERN.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S-%f").replace(tzinfo=UTC)


# --- where copies live ---------------------------------------------------------------


class LocalStore:
    """``<VELRO_DATA_DIR>/backups/``: a name appears only complete (written under a
    hidden temporary name in the same folder, then renamed)."""

    kind = BackupRun.Storage.LOCAL

    def __init__(self, root: Path):
        self.root = root

    def location(self, name: str) -> str:
        return str(self.root / name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in self.root.iterdir() if entry.is_file())

    def temp_dir(self) -> tempfile.TemporaryDirectory:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".tmp-", dir=self.root)

    def put_file(self, path: Path, name: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / name
        if path.parent.parent == self.root:  # one of our temp_dir()s: the same file system
            os.replace(path, target)
            return
        partial = self.root / f".{name}.part"
        try:
            shutil.copyfile(path, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def put_text(self, name: str, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{name}.part"
        partial.write_text(text)
        os.replace(partial, self.root / name)

    def read_text(self, name: str) -> str:
        return (self.root / name).read_text()

    @contextlib.contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        path = self.root / name
        if not path.is_file():
            raise BackupError(f"{path} is missing")
        yield path

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class S3Store:
    """The media bucket (``MEDIA_STORAGE=s3``) under ``backups/``, through the media
    storage's own django-storages backend and settings (credentials, endpoint, timeouts)
    with no ACL on objects: the bucket's private default."""

    kind = BackupRun.Storage.S3

    def __init__(self, config: dict):
        options = {**config.get("OPTIONS", {}), "location": BACKUP_PREFIX.rstrip("/"), "file_overwrite": True}
        options["default_acl"] = None
        self.storage = import_string(config["BACKEND"])(**options)

    def location(self, name: str) -> str:
        return f"s3://{self.storage.bucket_name}/{BACKUP_PREFIX}{name}"

    def names(self) -> list[str]:
        return sorted(self.storage.listdir("")[1])

    def temp_dir(self) -> tempfile.TemporaryDirectory:
        return tempfile.TemporaryDirectory(prefix="velro-backup-")

    def put_file(self, path: Path, name: str) -> None:
        # One PUT, or a multipart upload that the store shows only once completed (and
        # boto3 aborts on failure): the name never holds half a dump.
        with path.open("rb") as fh:
            self.storage.save(name, File(fh, name=name))

    def put_text(self, name: str, text: str) -> None:
        self.storage.save(name, ContentFile(text.encode()))

    def read_text(self, name: str) -> str:
        with self.storage.open(name, "rb") as fh:
            return fh.read().decode()

    @contextlib.contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        with self.temp_dir() as folder:
            path = Path(folder) / name
            try:
                self.storage.bucket.download_file(f"{BACKUP_PREFIX}{name}", str(path))
            except Exception as exc:
                raise BackupError(f"cannot fetch {self.location(name)}: {exc}") from exc
            yield path

    def delete(self, name: str) -> None:
        self.storage.delete(name)


def backup_store() -> LocalStore | S3Store:
    """Where copies go: the media bucket with MEDIA_STORAGE=s3, else BACKUP_DIR (default
    the data folder's backups/)."""
    if settings.MEDIA_STORAGE == "s3":
        return S3Store(settings.STORAGES["default"])
    return LocalStore(Path(settings.BACKUP_DIR or Path(settings.VELRO_DATA_DIR) / BACKUP_PREFIX.rstrip("/")))


# --- one backup at a time --------------------------------------------------------------


@contextlib.contextmanager
def backup_lock(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Hold the database's backup lock (a session advisory lock on a connection of its
    own) for the block; BackupBusy when another process holds it."""
    with psycopg.connect(**libpq_params(alias), autocommit=True) as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0]:
            raise BackupBusy("another backup of this database is running; try again when it has finished")
        try:
            # With the lock, nothing else is running: a row still "running" is a process
            # that died (killed, machine lost), and so is a day-old scratch database.
            BackupRun.objects.filter(status=BackupRun.Status.RUNNING).update(
                status=BackupRun.Status.FAILED,
                finished_at=timezone.now(),
                error="interrupted: the process ended before the backup finished",
            )
            drop_stale_scratch_databases(conn)
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


# --- counting rows --------------------------------------------------------------------

# Every ordinary table pg_dump dumps the rows of: all schemas but the system's, not
# extensions' members. Leaf tables only (a partition is counted, not its parent).
_TABLES = r"""
SELECT n.nspname, c.relname
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def count_rows(conn: psycopg.Connection) -> dict[str, int]:
    """``{"schema.table": exact row count}`` of every table, in one statement (so one
    snapshot, whatever the transaction's isolation)."""
    tables = conn.execute(_TABLES).fetchall()
    if not tables:
        return {}
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM ONLY {}").format(
            sql.Literal(f"{schema}.{table}"), sql.Identifier(schema, table)
        )
        for schema, table in tables
    )
    return {label: count for label, count in conn.execute(query).fetchall()}


def count_differences(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    """Each table whose count differs, or that is only on one side, as a phrase."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            problems.append(f"{table}: missing from the restore ({expected[table]} rows in the dump)")
        elif table not in expected:
            problems.append(f"{table}: not in the recorded counts ({actual[table]} rows restored)")
        elif expected[table] != actual[table]:
            problems.append(f"{table}: {actual[table]} rows restored, {expected[table]} in the dump")
    return problems


# --- taking one -----------------------------------------------------------------------


def backup_take(
    *,
    store: LocalStore | S3Store | None = None,
    output: Path | None = None,
    progress: Progress = _quiet,
    verbose: bool = False,
    alias: str = DEFAULT_DB_ALIAS,
) -> BackupRun:
    """Take one backup into ``store`` (default :func:`backup_store`), or into the file
    ``output`` (a one-off copy outside the schedule's storage: recorded, never pruned or
    verified by the schedule). Returns the record; raises BackupError after recording a
    failure."""
    store = store or (None if output else backup_store())
    started = timezone.now()
    name = output.name if output else backup_name(started)
    run = BackupRun.objects.create(
        name=name,
        storage=BackupRun.Storage.FILE if output else store.kind,
        location=str(output) if output else store.location(name),
        started_at=started,
    )
    try:
        try:
            major, version = server_major(alias)
        except Exception as exc:
            raise BackupError(f"Cannot connect to the database: {exc}") from exc
        binary = find_binary("pg_dump", major)
        params = libpq_params(alias)
        progress(f"Backing up database {params.get('dbname')} (PostgreSQL {version}) with {binary}")
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.TemporaryDirectory(prefix=".tmp-", dir=output.parent) if output else store.temp_dir()
        with folder as tmp:
            partial = Path(tmp) / name
            clock = time.monotonic()
            with psycopg.connect(**params) as conn:
                # The dump and the counts share this transaction's snapshot: they agree.
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                counts = count_rows(conn)
                progress(f"Counted {sum(counts.values())} rows in {len(counts)} tables (snapshot {snapshot})")
                pg_dump(partial, binary=binary, params=params, snapshot=snapshot, verbose=verbose)
                conn.rollback()
            partial.chmod(0o600)  # the whole database, password hashes included: the owner's only
            size = partial.stat().st_size
            digest = sha256_file(partial)
            progress(f"Dumped {human_size(size)} in {time.monotonic() - clock:.1f} s, sha256 {digest[:16]}…")
            if output:
                os.replace(partial, output)
                output.with_name(output.name + CHECKSUM_SUFFIX).write_text(checksum_text(digest, name))
            else:
                clock = time.monotonic()
                try:
                    store.put_file(partial, name)
                    store.put_text(name + CHECKSUM_SUFFIX, checksum_text(digest, name))
                except Exception as exc:
                    with contextlib.suppress(Exception):  # no copy without its checksum
                        store.delete(name)
                    raise BackupError(f"cannot store the copy at {store.location(name)}: {exc}") from exc
                progress(f"Stored {store.location(name)} and its {CHECKSUM_SUFFIX} in {time.monotonic() - clock:.1f} s")
    except (BackupError, CommandError, psycopg.Error, OSError) as exc:
        _record(run, status=BackupRun.Status.FAILED, finished_at=timezone.now(), error=str(exc))
        raise BackupError(str(exc)) from exc
    _record(
        run,
        status=BackupRun.Status.TAKEN,
        finished_at=timezone.now(),
        size=size,
        sha256=digest,
        row_counts=counts,
    )
    return run


def _record(run: BackupRun, **fields) -> None:
    for field, value in fields.items():
        setattr(run, field, value)
    run.save(update_fields=list(fields))


# --- retention ------------------------------------------------------------------------


def retained(
    copies: Iterable[tuple[str, datetime]], *, keep_daily: int, keep_weekly: int, protect: Iterable[str] = ()
) -> set[str]:
    """The names to keep of ``copies`` (name, when taken): the newest copy of each of the
    ``keep_daily`` most recent days that have one; then, among older copies, the newest of
    each of the ``keep_weekly`` most recent ISO weeks that have one; and every name in
    ``protect`` that is among the copies (the newest verified one)."""
    newest_first = sorted(copies, key=lambda copy: copy[1], reverse=True)
    keep: set[str] = set()
    days: set[date] = set()
    oldest_daily: date | None = None
    for name, at in newest_first:
        day = at.date()
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(name)
            oldest_daily = day
    weeks: set[tuple[int, int]] = set()
    for name, at in newest_first:
        if oldest_daily is not None and at.date() >= oldest_daily:
            continue  # the daily copies' span
        week = at.isocalendar()[:2]
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(name)
    names = {name for name, _ in newest_first}
    return keep | (set(protect) & names)


def backup_prune(*, store: LocalStore | S3Store | None = None, progress: Progress = _quiet) -> list[str]:
    """Delete the copies (and their checksums) retention does not keep; the names
    deleted. Files that are not backups are left alone."""
    store = store or backup_store()
    copies = [(name, at) for name in store.names() if (at := taken_at(name))]
    newest_verified = (
        BackupRun.objects.filter(storage=store.kind, verify_ok=True, pruned_at__isnull=True)
        .order_by("-finished_at")
        .values_list("name", flat=True)
        .first()
    )
    keep = retained(
        copies,
        keep_daily=settings.BACKUP_KEEP_DAILY,
        keep_weekly=settings.BACKUP_KEEP_WEEKLY,
        protect=[newest_verified] if newest_verified else [],
    )
    doomed = sorted(name for name, _ in copies if name not in keep)
    for name in doomed:
        store.delete(name + CHECKSUM_SUFFIX)
        store.delete(name)
    if doomed:
        BackupRun.objects.filter(storage=store.kind, name__in=doomed, pruned_at__isnull=True).update(
            pruned_at=timezone.now()
        )
    progress(
        f"Retention (newest of {settings.BACKUP_KEEP_DAILY} days, then of {settings.BACKUP_KEEP_WEEKLY} weeks): "
        f"kept {len(copies) - len(doomed)} of {len(copies)}, deleted {len(doomed)}"
    )
    return doomed


# --- verifying one --------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    detail: str


def backup_verify(
    *,
    store: LocalStore | S3Store | None = None,
    name: str | None = None,
    progress: Progress = _quiet,
    verbose: bool = False,
    alias: str = DEFAULT_DB_ALIAS,
) -> BackupRun:
    """Prove the newest copy in ``store`` (or the copy ``name``) by a restore, and record
    the outcome on its BackupRun (made when the copy has none). Raises BackupError after
    recording a failed verification."""
    store = store or backup_store()
    if name is None:
        copies = sorted((at, copy) for copy in store.names() if (at := taken_at(copy)))
        if not copies:
            raise BackupError(f"no backup to verify in {store.location('')}")
        name = copies[-1][1]
    run = BackupRun.objects.filter(storage=store.kind, name=name).order_by(
        "-started_at"
    ).first() or BackupRun.objects.create(
        name=name,
        storage=store.kind,
        location=store.location(name),
        status=BackupRun.Status.TAKEN,
        started_at=taken_at(name) or timezone.now(),
        finished_at=taken_at(name),
    )
    progress(f"Verifying {store.location(name)}")
    clock = time.monotonic()
    try:
        verification = _verify(store, run, progress=progress, verbose=verbose, alias=alias)
    except BackupError as exc:
        verification = Verification(False, str(exc))
    _record(run, verified_at=timezone.now(), verify_ok=verification.ok, verify_detail=verification.detail)
    if not verification.ok:
        raise BackupError(f"verification of {name} failed: {verification.detail}")
    progress(f"Verified {name} in {time.monotonic() - clock:.1f} s: {verification.detail}")
    return run


def _verify(store, run: BackupRun, *, progress: Progress, verbose: bool, alias: str) -> Verification:
    name = run.name
    try:
        expected = parse_checksum(store.read_text(name + CHECKSUM_SUFFIX))
    except Exception as exc:
        raise BackupError(f"its checksum file {name}{CHECKSUM_SUFFIX} cannot be read: {exc}") from exc
    with store.local_copy(name) as path:
        actual = sha256_file(path)
        if actual != expected or (run.sha256 and actual != run.sha256):
            recorded = f", recorded {run.sha256}" if run.sha256 and run.sha256 != expected else ""
            raise BackupError(
                f"checksum mismatch: the copy's sha256 is {actual}, its {CHECKSUM_SUFFIX} says {expected or 'nothing'}"
                f"{recorded}: the copy is damaged"
            )
        if not is_dump(path):
            raise BackupError("not a pg_dump custom-format archive")
        progress(f"Checksum OK ({actual[:16]}…, {human_size(path.stat().st_size)})")
        if not run.row_counts:
            raise BackupError("no row counts were recorded with this copy: nothing to compare the restore with")
        major, _ = server_major(alias)
        binary = find_binary("pg_restore", major)
        params = libpq_params(alias)
        source = params.pop("dbname")
        scratch = f"{SCRATCH_PREFIX}{timezone.now():%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
        with scratch_database(params, source, scratch):
            ensure_roles(params, scratch)
            clock = time.monotonic()
            progress(f"Restoring into the scratch database {scratch}")
            try:
                pg_restore(path, binary=binary, params=params, target=scratch, verbose=verbose)
            except CommandError as exc:
                raise BackupError(str(exc)) from exc
            progress(f"Restored in {time.monotonic() - clock:.1f} s")
            with psycopg.connect(**params, dbname=scratch) as conn:
                restored = count_rows(conn)
            differences = count_differences(run.row_counts, restored)
            if differences:
                raise BackupError("row counts differ: " + "; ".join(differences[:10]))
            total = sum(restored.values())
            progress(f"Row counts match the dump: {total} rows in {len(restored)} tables")
            errors, summary = _health_on(scratch, progress)
            if errors:
                raise BackupError("database health of the restored copy: " + "; ".join(errors))
    progress(f"Dropped {scratch}")
    return Verification(True, f"restored, {total} rows in {len(restored)} tables match the dump; health: {summary}")


@contextlib.contextmanager
def scratch_database(params: dict, source: str, name: str) -> Iterator[None]:
    """Create the database ``name`` for the block and drop it afterwards, whatever
    happened (WITH (FORCE): a connection left behind cannot keep it alive)."""
    if not name.startswith(SCRATCH_PREFIX):
        raise ValueError(f"not a scratch database name: {name}")
    with psycopg.connect(**params, dbname=source, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield
    finally:
        with psycopg.connect(**params, dbname=source, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# velro_verify_<YYYYmmddHHMMSS>_<random>: its creation time is in its name.
_SCRATCH_STAMP = re.compile(rf"^{SCRATCH_PREFIX}(\d{{14}})_[0-9a-f]+$")
STALE_SCRATCH_AGE = timedelta(days=1)


def drop_stale_scratch_databases(conn: psycopg.Connection) -> list[str]:
    """Drop the scratch databases created more than a day ago (a verification that was
    killed before its own drop); younger ones may be another database's verification
    in progress on the same server. The names dropped."""
    dropped = []
    rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [SCRATCH_PREFIX]).fetchall()
    for (name,) in rows:
        match = _SCRATCH_STAMP.match(name)
        if not match:
            continue
        created = datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        if timezone.now() - created > STALE_SCRATCH_AGE:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            dropped.append(name)
    return dropped


@contextlib.contextmanager
def default_database(name: str) -> Iterator[None]:
    """Point this thread's default Django connection at the database ``name`` (same
    server, same credentials) for the block: the health checks read through both the
    ORM and a cursor, and this is how both reach the restored copy. Thread-local
    (Django's connection handler), so other threads keep the real database."""
    original = connections[DEFAULT_DB_ALIAS]
    wrapper = original.__class__({**original.settings_dict, "NAME": name}, DEFAULT_DB_ALIAS)
    connections[DEFAULT_DB_ALIAS] = wrapper
    try:
        yield
    finally:
        wrapper.close()
        connections[DEFAULT_DB_ALIAS] = original


# Checks that say nothing about the copy: the record of backups is the live database's.
NOT_ON_A_COPY = {"backups"}


def _health_on(database: str, progress: Progress) -> tuple[list[str], str]:
    """Run the health report on ``database``; the ERRORs (as "check: summary") and a
    one-line summary of the levels."""
    from health.checks import CHECKS
    from health.services import health_report

    with default_database(database):
        report = health_report(only=[name for name, _ in CHECKS if name not in NOT_ON_A_COPY])
    levels = [check.level for check in report.checks]
    summary = ", ".join(f"{levels.count(level)} {level.name}" for level in Level)
    progress(f"Health checks on the restored copy: {summary}")
    return [f"{check.name}: {check.summary}" for check in report.checks if check.level >= Level.ERROR], summary


# --- the scheduled chain -----------------------------------------------------------------


def backup_scheduled(*, progress: Progress = _quiet) -> BackupRun:
    """What the worker runs daily: take a backup, prune by retention, verify the new copy
    (in that order: the newest verified copy survives pruning even if this one then fails
    its verification), all under the backup lock."""
    with backup_lock():
        store = backup_store()
        run = backup_take(store=store, progress=progress)
        backup_prune(store=store, progress=progress)
        return backup_verify(store=store, name=run.name, progress=progress)


# --- what dbhealth and the metrics read ----------------------------------------------------


def last_verified_at() -> datetime | None:
    """When the newest backup whose verification passed finished (the age of the data a
    restore would bring back), or None: one entry of ``backup_runs_verified_idx``."""
    return (
        BackupRun.objects.filter(verify_ok=True, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
