"""What the parts of the benchmark that run on a database of their own share (the
providers and the live-status parts): the plan by mode, the progress line with the part's
name, the throwaway database — created and migrated as production's is, dropped at the
end — and the report: every target with its verdict, and the part's section of the
results file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import psycopg
from django.db import connection

from bench.runner import Target, connection_kwargs, drop_database, migrate_database


class BenchPart:
    label = ""  # "providers", "events": the progress lines', the database's and the results' name
    targets_name = ""  # "provider", "events": the verdict line's
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
        drop_database(self.db, via=self.base_name)
        with psycopg.connect(**connection_kwargs(self.base_name), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(self.db)))
        self.say(f"{self.db}: created, migrating")
        migrate_database(self.db)

    def drop_database(self) -> None:
        drop_database(self.db, via=self.base_name)
        self.say(f"{self.db}: dropped")

    def report_targets(self, title: str, targets: list[Target], section: dict) -> int:
        """Print every target with its verdict, write ``section`` (with the mode, the plan
        and the targets) under the part's name into the results file, keeping the other
        parts' sections, and return 1 if an enforced target failed, else 0."""
        self.out.write("")
        self.out.write(title)
        for t in targets:
            verdict = ("PASS" if t.passed else "FAIL") + ("" if t.enforced else " (not enforced)")
            style = self.style.SUCCESS if t.passed else self.style.ERROR
            self.out.write(f"  {t.label}: {t.measured} (target {t.goal}) " + style(verdict))
            if t.detail:
                self.out.write(f"    {t.detail}")
        data = {}
        if self.output.exists():
            with contextlib.suppress(ValueError):
                data = json.loads(self.output.read_text())
        data[self.label] = {
            "mode": "smoke" if self.smoke else "full",
            "plan": asdict(self.plan),
            **section,
            "targets": [asdict(t) for t in targets],
        }
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        self.say(f"results written to {self.output}")
        failed = [t.key for t in targets if t.enforced and not t.passed]
        if failed:
            self.out.write(self.style.ERROR(f"{self.targets_name} targets FAIL: {', '.join(failed)}"))
            return 1
        self.out.write(self.style.SUCCESS(f"all {self.targets_name} targets PASS"))
        return 0
