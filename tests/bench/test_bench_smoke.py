"""`manage.py bench --smoke`: the whole benchmark, tiny, so it cannot rot.

Real databases on the configured server, real gunicorn servers (production settings),
real locust. The speed targets are not enforced at this size; everything that says the
benchmark measures the right thing is: the baseline answers the same JSON, statements per
request do not grow with the page, POSTs all succeed and the credit books balance, the
page and explore queries use their indexes.
"""

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from bench.runner import connection_kwargs

TARGETS = {
    "get_throughput_vs_baseline",
    "baseline_same_json",
    "rls_overhead",
    "scale_first_page",
    "scale_deep_page",
    "page_plans_use_index",
    "queries_constant",
    "session_check_indexed",
    "session_check_cost",
    "post_throughput_vs_baseline",
    "post_baseline_same_json",
    "post_errors",
    "post_books",
    "explore_p95",
    "explore_index",
    "admin_pages_answer",
}
# The heavy people's API: the whale against a heavy person, endpoint by endpoint.
HEAVY_TARGETS = {
    "heavy_stats",
    "heavy_list_status_failed",
    "heavy_list_project",
    "heavy_list_ai_model",
    "heavy_list_is_favorite",
    "heavy_list_created_after",
    "heavy_ledger",
    "heavy_ledger_type_grant",
}
# The admin pages named here, and one per changelist of a registered model (found from
# admin.site, so a new admin adds its own).
ADMIN_TARGETS = {
    "admin_dashboard",
    "admin_list_accounts_user",
    "admin_list_generations_generation",
    "admin_list_credits_credittransaction",
    "admin_list_projects_project",
    "admin_list_stylestacks_stylestack",
    "admin_list_billing_order",
    "admin_list_billing_stripeevent",
    "admin_search_generations_prompt",
    "admin_search_generations_email",
    "admin_search_users_prefix",
    "admin_search_ledger_email",
    "admin_filter_generations_failed",
    "admin_filter_ledger_grant",
    "admin_change_user_whale",
    "admin_change_generation",
    "admin_change_project",
    "admin_change_stack",
    "admin_provider_cost",
    "admin_dbhealth",
}
CORRECTNESS = {
    "baseline_same_json",
    "page_plans_use_index",
    "queries_constant",
    "post_baseline_same_json",
    "post_errors",
    "post_books",
    "explore_index",
    "admin_pages_answer",
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    output = tmp_path_factory.mktemp("bench") / "results.json"
    env = {**os.environ, "DEBUG": "1"}
    process = subprocess.run(
        [sys.executable, "manage.py", "bench", "--smoke", "--output", str(output)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return process, output


def test_the_smoke_run_succeeds_and_prints_every_target(smoke):
    process, _ = smoke
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-4000:]
    assert "all targets PASS (smoke: correctness only)" in process.stdout
    for word in ("PASS", "peak worker memory", "EXPLAIN (ANALYZE, BUFFERS)", "generations_user_created_idx"):
        assert word in process.stdout


def test_results_hold_every_target_with_a_measured_value(smoke):
    process, output = smoke
    assert process.returncode == 0, process.stdout[-4000:]
    results = json.loads(output.read_text())
    assert results["mode"] == "smoke"
    targets = {t["key"]: t for t in results["targets"]}
    assert set(targets) >= TARGETS | HEAVY_TARGETS | ADMIN_TARGETS
    assert all(key.startswith("admin_list_") for key in set(targets) - TARGETS - HEAVY_TARGETS - ADMIN_TARGETS)
    for key, target in targets.items():
        assert target["measured"], key
        assert target["enforced"] == (key in CORRECTNESS), key
        if key in CORRECTNESS:
            assert target["passed"], target
    for name, run in results["runs"].items():
        assert run["requests"] > 0, name
        assert run["p50"] > 0 and run["p99"] >= run["p95"] >= run["p50"], name
    assert results["runs"]["POST generations 1m"]["errors"] == 0
    assert results["runs"]["baseline POST 1m"]["errors"] == 0 and results["runs"]["baseline POST 1m"]["requests"] > 0
    # Every admin page answered the staff member on both servers, and was timed.
    for key, page in results["admin"].items():
        for side in ("small", "large"):
            assert page[side]["statuses"] == [200] and page[side]["requests"] >= 1, (key, page)
    # The whale and the heavy person were found, with a ledger row per generation (and the bonus).
    people = results["heavy_api"]["people"]
    for who in ("whale", "heavy"):
        assert people[who]["ledger_rows"] == people[who]["generations"] + 1 > 1, people
    queries = results["queries_per_request"]["large"]
    assert queries["10"] == queries["50"] == queries["100"] > 0
    assert results["baseline_queries_per_request"] >= 1
    assert all(mb > 10 for mb in results["peak_worker_rss_mb"].values())
    assert results["explore"]["index_scans"] > 0 and results["explore"]["seq_scans"] == 0
    assert results["machine"]["cpus"] >= 1 and results["machine"]["postgresql"]


def test_the_smoke_databases_are_dropped(smoke):
    process, _ = smoke
    with psycopg.connect(**connection_kwargs("postgres"), autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    assert not [name for name in names if "_bench_smoke_" in name and name.endswith(f"_{process.pid}")]


PROVIDER_TARGETS = {
    "providers_webhooks",
    "providers_polling",
    "providers_worker_memory",
    "providers_webhooks_drive_it",
    "providers_local_renders",
    "providers_worker_scaling",
}


def test_the_smoke_run_measures_generations_at_provider_scale(smoke):
    """ONE worker against the fake fal: every generation completes by webhook, then by
    polling, within the (scaled) time after the last submit; the worker stays small."""
    process, output = smoke
    assert process.returncode == 0, process.stdout[-4000:]
    assert "all provider targets PASS" in process.stdout
    providers = json.loads(output.read_text())["providers"]
    assert providers["mode"] == "smoke"
    targets = {t["key"]: t for t in providers["targets"]}
    assert set(targets) == PROVIDER_TARGETS
    assert all(t["passed"] for t in targets.values() if t["enforced"]), targets
    assert not targets["providers_worker_scaling"]["enforced"]  # smoke: reported only
    throughput = providers["worker_throughput"]
    for workers in ("1", "2"):
        assert throughput["pooled"][workers]["renders"] == 2 * providers["plan"]["renders"]
        assert throughput["pooled"][workers]["renders_per_s"] > 0
    for mode in ("webhooks", "polling"):
        run = providers["runs"][mode]
        assert run["completed"] == run["generations"] == providers["plan"]["generations"]
        assert 0 < run["worker_peak_rss_mb"] < 200
    assert providers["runs"]["webhooks"]["webhooks_delivered"] >= providers["plan"]["generations"]
    assert providers["runs"]["polling"]["webhooks_delivered"] == 0


EVENTS_TARGETS = {"events_connected", "events_heartbeat", "events_delivered", "events_latency_p95"}


def test_the_smoke_run_measures_live_status(smoke):
    """SSE streams against one events process: all connected through a heartbeat, every
    status change on its owner's stream only, within the latency goal."""
    process, output = smoke
    assert process.returncode == 0, process.stdout[-4000:]
    assert "all events targets PASS" in process.stdout
    events = json.loads(output.read_text())["events"]
    assert events["mode"] == "smoke"
    targets = {t["key"]: t for t in events["targets"]}
    assert set(targets) == EVENTS_TARGETS
    assert all(t["passed"] and t["enforced"] for t in targets.values()), targets
    measured = events["measured"]
    streams = events["plan"]["streams"]
    assert measured["connected"] == measured["still_connected"] == measured["with_keepalive"] == streams
    assert measured["delivered"] == measured["changes"] == 2 * streams
    assert measured["foreign_events"] == 0
    assert 0 < measured["p50_s"] <= measured["p95_s"] <= measured["max_s"] < 1
