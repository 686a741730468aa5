"""The alert rules in deploy/prometheus are valid and behave as their unit tests say:
``promtool check rules`` and ``promtool test rules`` (Debian's prometheus package,
installed by `make test` through `make install-promtool`; without it these fail, never
skip). Every alert has at least one test, and the example scrape configuration parses."""

import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import ROOT
from tests.metrics.conftest import exported_names

RULES = ROOT / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run `make install-promtool` (Debian's prometheus package)"
    return found


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=RULES, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid(promtool):
    result = run(promtool, "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_pass_their_unit_tests(promtool):
    result = run(promtool, "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_expectation_fails(promtool, tmp_path):
    """The unit tests can fail: the same file expecting the ledger alert a minute early."""
    text = (RULES / "alerts_test.yml").read_text()
    broken = text.replace(
        "      - eval_time: 2m\n        alertname: VelroLedgerInvariantBroken",
        "      - eval_time: 3m\n        alertname: VelroLedgerInvariantBroken",
        1,
    )
    assert broken != text
    shutil.copy(RULES / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "alerts_test.yml").write_text(broken)
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "VelroLedgerInvariantBroken" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet():
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    tests = yaml.safe_load((RULES / "alerts_test.yml").read_text())["tests"]
    checks = [check for test in tests for check in test["alert_rule_test"]]
    fired = {check["alertname"] for check in checks if check.get("exp_alerts")}
    quiet = {check["alertname"] for check in checks if not check.get("exp_alerts")}
    assert alerts - fired == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown staying quiet"


def test_the_alerts_name_only_metrics_that_exist_or_are_to_be_wired(db):
    """A renamed metric would leave its alert silent forever: every velro_* name an alert
    reads is in what /metrics exports (or is the backup gauge still to be wired)."""
    text = (RULES / "alerts.yml").read_text()
    used = set(re.findall(r"\b(velro_[a-z_]+)", text))
    assert used and used <= exported_names(), used - exported_names()


def test_the_example_scrape_configuration_parses(promtool):
    result = run(promtool, "check", "config", "--syntax-only", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
