"""The shapes of a health report: a level, one check's result, the whole report."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any, NamedTuple


class Level(enum.IntEnum):
    """Ordered, so the report's level is the worst of its checks'."""

    OK = 0
    WARN = 1
    ERROR = 2


class Outcome(NamedTuple):
    """What a check function returns; the runner adds the name and the duration."""

    level: Level
    summary: str
    details: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's result. ``details`` are rows of one table: dicts with the same keys,
    JSON-ready values (str, int, bool, None)."""

    name: str
    level: Level
    summary: str
    details: list[dict[str, Any]]
    duration: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "level": self.level.name,
            "summary": self.summary,
            "duration": round(self.duration, 4),
            "details": self.details,
        }


@dataclasses.dataclass(frozen=True)
class Report:
    checks: list[Check]
    generated_at: datetime.datetime
    duration: float

    @property
    def level(self) -> Level:
        return max((check.level for check in self.checks), default=Level.OK)

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.name,
            "generated_at": self.generated_at.isoformat(),
            "duration": round(self.duration, 4),
            "checks": [check.as_dict() for check in self.checks],
        }
