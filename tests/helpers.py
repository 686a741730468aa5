"""Running manage.py in a subprocess against the test server (a real second process),
gunicorn as production runs it, polling for a condition, running callables at the same
moment on their own database connections (races), and counting an index's scans."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET ``path`` from 127.0.0.1:``port``: the status, the headers (lower-cased names)
    and the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_for_port(proc: subprocess.Popen, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not start listening in time")


@contextlib.contextmanager
def gunicorn(env: dict, log: Path, timeout: float = 60):
    """gunicorn (gunicorn.conf.py, velro.wsgi) with ``env`` on a free loopback port, its
    output in ``log``; yields the port, and stops it (and its workers) after."""
    port = free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "GUNICORN_GRACEFUL_TIMEOUT": "5"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "velro.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(proc, port, time.monotonic() + timeout)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


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
