"""Running manage.py in a subprocess against the test server (a real second process)."""

import os
import subprocess
import sys
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
