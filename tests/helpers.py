"""Running manage.py in a subprocess against the test server (a real second process),
running callables at the same moment on their own database connections (races), and
counting an index's scans."""

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url(name: str | None = None) -> str:
    """A DATABASE_URL for ``name`` (default: the test database) on the test server."""
    params = connection.get_connection_params()
    name = name or connection.settings_dict["NAME"]
    host, port = params["host"], params.get("port")
    netloc = f"{params['user']}:{params.get('password') or ''}@"
    if host.startswith("/"):
        return f"postgres://{netloc}/{name}?host={host}" + (f"&port={port}" if port else "")
    return f"postgres://{netloc}{host}:{port or 5432}/{name}"


def manage_env(url: str, **extra) -> dict:
    return {**os.environ, "DATABASE_URL": url, "DEBUG": "1", **extra}


def manage(url: str, *args, timeout: int = 180) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=manage_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_together(*targets: Callable, timeout: float = 60):
    """Start every target at the same moment, each in its own thread (so on its own
    database connection); return what each returned or raised."""
    barrier = threading.Barrier(len(targets))
    results: list = [None] * len(targets)

    def runner(index, target):
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except Exception as exc:  # collected for the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


def scans(index: str) -> int:
    """How many times this transaction has scanned ``public.<index>`` so far: wrapped
    around a real request, whether PostgreSQL read that index for it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_numscans(%s::regclass)", [f"public.{index}"])
        return cursor.fetchone()[0]
