"""The embedded PostgreSQL: several processes starting it at once share one server."""

import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from velro import embedded_db

ROOT = Path(__file__).resolve().parents[2]
START = (
    "import sys; from pathlib import Path; from velro import embedded_db; "
    "db = embedded_db.ensure_running(Path(sys.argv[1]), 'velro'); print(db['HOST'])"
)


@pytest.fixture
def data_dir():
    # Inside the project: as root the wheel runs postgres as the `pgserver` user, which
    # must be able to traverse every parent folder.
    path = Path(settings.BASE_DIR) / ".data" / f"test-embedded-{uuid.uuid4().hex[:8]}"
    yield path
    embedded_db.stop(path)
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_concurrent_starts_share_one_server(data_dir):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START, str(data_dir)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err.decode()[-2000:] for _, err in outputs]
    hosts = {out.decode().strip() for out, _ in outputs}
    assert len(hosts) == 1
    (host,) = hosts
    with psycopg.connect(host=host, user="postgres", dbname="velro") as conn:
        assert conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0] >= 16


def test_stop_stops_it_and_a_second_stop_is_harmless(data_dir):
    subprocess.run([sys.executable, "-c", START, str(data_dir)], cwd=ROOT, check=True, capture_output=True)
    assert embedded_db.stop(data_dir) is True
    assert embedded_db.stop(data_dir) is False
