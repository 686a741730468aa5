"""Supabase's own JavaScript client, unchanged, against /auth/v1 of the app served on
loopback (issue 16): tests/js/auth.test.mjs runs supabase-js 2.119.2 (pinned, with its
lockfile) under Node's test runner. ``make test`` installs it (``npm ci`` in tests/js);
without Node or that install this test fails rather than skips, so CI cannot pass
without the proof."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache

from accounts.apikeys import api_key

JS = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS / "auth.test.mjs"
TIMEOUT = 120  # seconds; the run takes about two


@pytest.fixture
def app(live_server, settings):
    settings.PASSWORD_BREACH_CHECK = False  # never the network (accounts/passwords.py)
    settings.AUTH_EMAIL_CONFIRM = False  # signUp returns a session
    cache.clear()  # the rate limits' counters are committed rows: start and leave none
    yield live_server
    cache.clear()


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not on PATH: supabase-js's test needs Node 20 or newer (README, Tests).")
    if not (JS / "node_modules" / "@supabase" / "supabase-js").is_dir():
        pytest.fail(f"supabase-js is not installed in {JS}/node_modules: run `make test` (or `cd tests/js && npm ci`).")
    return found


def test_supabase_js_signs_up_in_refreshes_and_out(app):
    # Node 20 has a global WebSocket, which createClient needs, only behind the flag.
    command = [node(), "--experimental-websocket", "--test", "--test-reporter=spec", str(SCRIPT)]
    env = {**os.environ, "SUPABASE_URL": app.url, "SUPABASE_ANON_KEY": api_key("anon"), "NO_COLOR": "1"}
    # Its own process group: on a timeout, the test runner's child goes too.
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = run.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        output, _ = run.communicate()
        pytest.fail(f"node --test did not finish in {TIMEOUT} s:\n{output}")
    assert run.returncode == 0, f"node --test exited with {run.returncode}:\n{output}"
