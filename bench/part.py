"""What the parts of the benchmark that run on a database of their own share (the
providers and the live-status parts): the plan by mode, the progress line with the part's
name, and the throwaway database — created and migrated as production's is, dropped at
the end."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection

from bench.runner import child_database_env, connection_kwargs


class BenchPart:
    label = ""  # "providers", "events": the progress lines' and the database's name
    full_plan = smoke_plan = None

    def __init__(self, *, smoke: bool, output: Path, out, style):
        self.plan = self.smoke_plan if smoke else self.full_plan
        self.smoke = smoke
        self.output = output
        self.out, self.style = out, style
        self.base_name = connection.settings_dict["NAME"]
        self.db = f"{self.base_name}_bench_{self.label}_{os.getpid()}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"velro-bench-{self.label}-"))
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        self.out.write(f"[{time.monotonic() - self.started:6.1f} s] {self.label}: {message}")
        self.out.flush()

    def create_database(self) -> None:
        with psycopg.connect(**connection_kwargs(self.base_name), autocommit=True) as conn:
            name = psycopg.sql.Identifier(self.db)
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(name))
        self.say(f"{self.db}: created, migrating")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=settings.BASE_DIR,
            env={**os.environ, **child_database_env(self.db), "DEBUG": "1"},
            check=True,
        )

    def drop_database(self) -> None:
        with psycopg.connect(**connection_kwargs(self.base_name), autocommit=True) as conn:
            name = psycopg.sql.Identifier(self.db)
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        self.say(f"{self.db}: dropped")
