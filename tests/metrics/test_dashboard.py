"""deploy/grafana/velro.json: valid JSON Grafana imports, one panel per thing an on-call
person looks at, and every metric a panel queries is one /metrics exports (so a renamed
metric cannot leave a panel empty)."""

import json
import re

from tests.helpers import ROOT
from tests.metrics.conftest import exported_names

DASHBOARD = ROOT / "deploy" / "grafana" / "velro.json"


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return [panel for panel in found if panel["type"] != "row"]


def test_the_dashboard_is_grafana_json_with_a_panel_for_each_topic():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "velro-operations" and dashboard["schemaVersion"] >= 36
    assert {"name": "datasource", "type": "datasource"}.items() <= dashboard["templating"]["list"][0].items()
    titles = " | ".join(panel["title"] for panel in panels(dashboard)).lower()
    for topic in (
        "requests per second",
        "latency",
        "5xx",
        "oldest pending",
        "heartbeat",
        "renders",
        "failures",
        "credits",
        "sign-ups",
        "connections",
        "backup",
        "webhook",
        "media",
        "ledger",
        "live-status streams",
    ):
        assert topic in titles, topic
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["targets"], panel["title"]
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])


def test_every_metric_a_panel_queries_is_exported(db):
    exported = exported_names()
    used = {
        name
        for panel in panels(json.loads(DASHBOARD.read_text()))
        for target in panel["targets"]
        for name in re.findall(r"\b(velro_[a-z_]+)", target["expr"])
    }
    assert len(used) >= 15
    assert used <= exported, sorted(used - exported)


def test_a_misspelt_metric_would_be_caught(db):
    assert "velro_generation_oldest_pending_age_seconds" in exported_names()
    assert "velro_generations_oldest_pending_age_seconds" not in exported_names()
