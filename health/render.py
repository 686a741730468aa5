"""The report as text tables (the command), JSON (the command's --json, the API) and
table rows for the admin template."""

from __future__ import annotations

import json
from typing import Any

from health.base import Check, Report


def table(details: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Column names (the union of the rows' keys, in first-seen order) and the rows as
    display strings."""
    columns: list[str] = []
    for row in details:
        columns += [key for key in row if key not in columns]
    return columns, [[cell(row.get(column)) for column in columns] for row in details]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def text_table(details: list[dict[str, Any]], indent: str = "    ") -> list[str]:
    columns, rows = table(details)
    if not columns:
        return []
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(columns)]

    def line(values: list[str]) -> str:
        return (indent + "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))).rstrip()

    return [line(columns), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def check_text(check: Check) -> list[str]:
    return [f"{check.name}: {check.level.name} — {check.summary}", *text_table(check.details), ""]


def report_text(report: Report) -> str:
    lines = [f"Database health {report.generated_at:%Y-%m-%d %H:%M:%S %Z} ({report.duration:.2f} s)", ""]
    for check in report.checks:
        lines += check_text(check)
    counts = {level: sum(check.level.name == level for check in report.checks) for level in ("OK", "WARN", "ERROR")}
    lines.append(f"Overall: {report.level.name} ({counts['OK']} OK, {counts['WARN']} WARN, {counts['ERROR']} ERROR)")
    return "\n".join(lines)


def report_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, default=str)
