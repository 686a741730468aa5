"""``manage.py seed_demo``: the demo dataset is made through the services, matches the
options, keeps the books right, is idempotent and leaves everyone else alone."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.selectors import credits_invariant_violations
from demo import services
from generations.models import Generation
from health.base import Level
from health.services import clear_migrations_cache, health_report
from projects.models import Project
from stylestacks.models import StackContributor, StyleStack

SMALL = ["--users", "6", "--recent-users", "2", "--projects", "4", "--generations", "15", "--stacks", "4"]


@pytest.fixture(autouse=True)
def _dev(settings, tmp_path):
    settings.DEBUG = True  # the command refuses to run without it
    settings.MEDIA_ROOT = tmp_path / "media"


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict:
    return services.demo_counts()


def plan_of(*, seed=services.Options.seed) -> services.Plan:
    """The plan SMALL describes."""
    return services.plan_for(services.Options(users=6, recent_users=2, projects=4, generations=15, stacks=4, seed=seed))


def test_the_dataset_matches_the_options(db, tmp_path):
    output = seed(*SMALL)

    people = services.demo_users()
    assert people.count() == 6
    assert Project.objects.filter(user__in=people).count() == 4
    assert StyleStack.objects.filter(user__in=people).count() == 4
    generations = Generation.objects.filter(user__in=people)
    assert generations.count() == 15
    # Several statuses and models, some with a style.
    statuses = set(generations.values_list("status", flat=True))
    assert {"completed", "failed", "cancelled", "pending", "processing"} <= statuses
    assert generations.values("ai_model").distinct().count() >= 3
    assert generations.exclude(style_stack=None, preset=None).exists()
    # Stacks: from a preset, a public one, a fork, a contributor.
    stacks = StyleStack.objects.filter(user__in=people)
    assert stacks.filter(created_from="preset").exists()
    assert stacks.filter(visibility="public").exists()
    fork = stacks.get(created_from="fork")
    assert fork.parent.fork_count == 1 and fork.parent.user_id != fork.user_id
    assert StackContributor.objects.filter(stack__in=stacks).exists()
    # Refunds for every failed and cancelled generation, outputs on completed ones that
    # point at files the local provider rendered.
    refunded = set(CreditTransaction.objects.filter(type="refund").values_list("generation_id", flat=True))
    assert refunded == set(generations.filter(status__in=["failed", "cancelled"]).values_list("pk", flat=True))
    for generation in generations.filter(status="completed"):
        assert generation.outputs
        for file in generation.outputs:
            assert (tmp_path / "media" / file["path"]).is_file()
    assert CreditTransaction.objects.filter(user__in=people, description=services.DEMO_CREDITS_REASON).count() == 6
    assert credits_invariant_violations() == []
    assert "Demo data ready" in output


def test_registrations_are_spread_and_the_recent_ones_fall_in_the_last_week(db):
    seed(*SMALL)

    week_ago = timezone.now() - timedelta(days=7)
    people = list(services.demo_users().order_by("email"))
    assert [user.created_at >= week_ago for user in people] == [False] * 4 + [True] * 2
    profiles = {profile.pk: profile.created_at for profile in Profile.objects.filter(user__in=people)}
    assert all(profiles[user.pk] == user.created_at for user in people)
    assert min(user.created_at for user in people) < timezone.now() - timedelta(days=30)


def test_running_it_twice_adds_nothing(db):
    seed(*SMALL)
    first = counts()
    ledger = CreditTransaction.objects.count()

    output = seed(*SMALL)

    assert counts() == first
    assert CreditTransaction.objects.count() == ledger
    assert "0 added" in output


def test_a_failure_mid_way_leaves_whole_units_and_the_next_run_completes_them(db, monkeypatch):
    real, calls = services.generation_complete, []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the provider blew up")
        return real(**kwargs)

    monkeypatch.setattr(services, "generation_complete", flaky)
    with pytest.raises(RuntimeError, match="blew up"):
        seed(*SMALL)

    # Everything before the failure is whole: each generation is in its planned status
    # (none charged and stuck in pending), the one being made is not there at all.
    planned = {g.key: g.status for g in plan_of().generations}
    made = dict(Generation.objects.values_list("idempotency_key", "status"))
    assert 0 < len(made) < 15
    assert all(planned[key] == status for key, status in made.items())
    assert credits_invariant_violations() == []

    monkeypatch.undo()
    seed(*SMALL)

    assert dict(Generation.objects.values_list("idempotency_key", "status")) == planned


def test_bigger_numbers_top_the_dataset_up(db):
    seed("--users", "3", "--recent-users", "1", "--projects", "2", "--generations", "5", "--stacks", "2")

    seed(*SMALL)

    assert (counts()["users"], counts()["projects"], counts()["generations"], counts()["style stacks"]) == (6, 4, 15, 4)
    assert credits_invariant_violations() == []


def test_the_health_report_on_it_has_no_error(db):
    seed(*SMALL)
    clear_migrations_cache()

    report = health_report()

    assert report.level < Level.ERROR, [(c.name, c.summary) for c in report.checks if c.level >= Level.ERROR]
    rows = {row["what"]: row["count"] for row in report.check("counts").details}
    assert rows["users"] == 6 and rows["registrations in the last 7 days"] == 2


def test_other_people_are_left_alone(db, alice):
    before = (
        Profile.objects.get(pk=alice.pk).credits_balance,
        CreditTransaction.objects.filter(user=alice).count(),
        Project.objects.filter(user=alice).count(),
        Generation.objects.filter(user=alice).count(),
    )
    alice.refresh_from_db()
    updated_at = alice.updated_at

    seed(*SMALL)

    alice.refresh_from_db()
    assert alice.updated_at == updated_at
    assert before == (
        Profile.objects.get(pk=alice.pk).credits_balance,
        CreditTransaction.objects.filter(user=alice).count(),
        Project.objects.filter(user=alice).count(),
        Generation.objects.filter(user=alice).count(),
    )
    assert not services.DEMO_EMAIL.match(alice.email)


def test_progress_names_each_phase_and_ends_with_a_summary(db):
    output = seed(*SMALL)

    for phase in ("users", "projects", "stacks", "generations"):
        assert f"{phase:<12}[####################] " in output
    assert "\r" not in output  # not a terminal: one line per phase
    for row in ("registered in the last 7 days", "completed", "forks", "ledger rows"):
        assert row in output


def test_on_a_terminal_the_progress_line_is_redrawn_in_place(db):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    call_command("seed_demo", *SMALL, stdout=out)

    output = out.getvalue()
    assert "\rusers       [##########----------] 3/6" in output
    assert "\rgenerations [####################] 15/15" in output


def test_the_default_dataset(db):
    output = seed()

    totals = counts()
    assert (totals["users"], totals["registered in the last 7 days"], totals["projects"]) == (42, 4, 20)
    assert (totals["generations"], totals["style stacks"]) == (145, 12)
    assert totals["style stacks: forks"] >= 2 and totals["style stacks: from presets"] >= 3
    assert totals["contributors"] >= 1
    assert all(totals[f"generations: {status}"] for status in Generation.Status.values)
    kinds = set(Generation.objects.values_list("ai_model__kind", flat=True))
    assert kinds == {"image", "video"}
    assert "Sign in as demo01@velro.local … demo42@velro.local" in output
    assert seed("--quiet").startswith("Demo data: 42 users, 20 projects, 12 style stacks, 145 generations (complete")


def test_quiet_prints_one_line(db):
    output = seed(*SMALL, "--quiet")

    assert output.count("\n") == 1 and output.startswith("Demo data: 6 users")


def test_the_seed_decides_the_data(db):
    seed(*SMALL)
    made = sorted(Generation.objects.values_list("idempotency_key", "user__email", "ai_model", "prompt", "status"))

    def planned(seed):
        return sorted((g.key, g.owner, g.model, g.prompt, g.status) for g in plan_of(seed=seed).generations)

    assert planned(services.Options.seed) == made
    assert planned(services.Options.seed + 1) != made


def test_it_refuses_without_debug_and_bad_options(db, settings):
    with pytest.raises(CommandError, match="--recent-users"):
        seed("--users", "2", "--recent-users", "3")
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        seed(*SMALL)
    assert services.demo_users().count() == 0
