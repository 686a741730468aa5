"""``{% admin_dashboard %}``: the admin index's dashboard (health/dashboard.py) drawn as
inline SVG on the server — no chart library, no script — with a title, a description
and the figures as a table beside each chart."""

from __future__ import annotations

from django import template
from django.utils import timezone

from generations.admin import STATUS_COLORS
from health.dashboard import DAYS, STATUSES, dashboard_figures

register = template.Library()

BAR = 16  # width of one day's slot, in SVG units
GAP = 3
LEFT = 36  # room for the y axis labels
TOP = 8
PLOT = 110  # height of the plotting area
CREDIT_COLORS = {"spent": "#ba2121", "granted": "#2e7d32"}


def _scale(maximum: int) -> float:
    return PLOT / maximum if maximum > 0 else 0


def _axis(days: list, maximum: int) -> dict:
    width = LEFT + BAR * len(days)
    return {
        "width": width + 4,
        "height": TOP + PLOT + 18,
        "baseline": TOP + PLOT,
        "right": width,
        "max": maximum,
        "first": days[0],
        "last": days[-1],
        "label_y": TOP + PLOT + 14,
        "left": LEFT,
        "axis_x": LEFT - 4,
        "max_y": TOP + 8,
    }


def _bars(rows: list[dict], series: list[tuple[str, str, str]], *, stacked: bool) -> tuple[list[dict], dict]:
    """Rectangles for ``rows`` (one per day): ``series`` is ``(key, colour, label)``;
    stacked bars pile the series up, grouped ones sit side by side."""
    totals = [
        sum(row[key] for key, _, _ in series) if stacked else max(row[key] for key, _, _ in series) for row in rows
    ]
    scale = _scale(max(totals, default=0))
    rects = []
    width = (BAR - GAP) / (1 if stacked else len(series))
    for index, row in enumerate(rows):
        x = LEFT + index * BAR + GAP / 2
        bottom = TOP + PLOT
        for position, (key, colour, label) in enumerate(series):
            value = row[key]
            if value <= 0:
                continue
            height = max(value * scale, 1)
            rects.append(
                {
                    "x": round(x if stacked else x + position * width, 2),
                    "y": round(bottom - height, 2),
                    "width": round(width, 2),
                    "height": round(height, 2),
                    "fill": colour,
                    "title": f"{row['day']:%Y-%m-%d}: {value} {label}",
                }
            )
            if stacked:
                bottom -= height
    return rects, _axis([row["day"] for row in rows], max(totals, default=0))


def _signups(rows):
    rects, axis = _bars(rows, [("count", "#205493", "sign-ups")], stacked=False)
    total = sum(r["count"] for r in rows)
    return {"rects": rects, "axis": axis, "rows": rows, "total": total, "today": rows[-1]["count"] if rows else 0}


def _generations(rows):
    series = [(status, STATUS_COLORS[status], status) for status in STATUSES]
    rects, axis = _bars(rows, series, stacked=True)
    legend = [
        {"label": status, "fill": STATUS_COLORS[status], "total": sum(r[status] for r in rows)} for status in STATUSES
    ]
    return {"rects": rects, "axis": axis, "rows": rows, "legend": legend, "total": sum(r["total"] for r in rows)}


def _credits(rows):
    series = [(key, colour, f"credits {key}") for key, colour in CREDIT_COLORS.items()]
    rects, axis = _bars(rows, series, stacked=False)
    legend = [
        {"label": key, "fill": colour, "total": sum(r[key] for r in rows)} for key, colour in CREDIT_COLORS.items()
    ]
    return {"rects": rects, "axis": axis, "rows": rows, "legend": legend}


def _failures(rows):
    maximum = max((r["count"] for r in rows), default=0)
    width = 260
    bars = [
        {**row, "y": 4 + index * 22, "width": max(round(row["count"] * width / maximum, 2), 1)}
        for index, row in enumerate(rows)
    ]
    return {"bars": bars, "height": 8 + 22 * len(rows), "total": sum(r["count"] for r in rows)}


def _queue(figures):
    oldest = figures["oldest_pending_at"]
    age = int((timezone.now() - oldest).total_seconds()) if oldest else None
    return {**figures, "oldest_pending_age": age}


@register.inclusion_tag("admin/health/dashboard.html", takes_context=True)
def admin_dashboard(context):
    request = context.get("request")
    figures = dashboard_figures(request.user) if request is not None else {}
    drawn = {
        "signups": _signups,
        "generations": _generations,
        "credits": _credits,
        "failures": _failures,
        "queue": _queue,
    }
    return {"days": DAYS, **{name: drawn[name](value) for name, value in figures.items()}}


@register.filter
def duration(seconds):
    """``3725`` → ``1 h 2 min``; a short age in seconds."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@register.filter
def get_item(mapping, key):
    """``row|get_item:"failed"``: a dict's value by a key held in a variable."""
    return mapping.get(key, "")
