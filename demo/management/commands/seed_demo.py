"""``manage.py seed_demo``: a realistic development dataset, made through the services
(demo/services.py), idempotent, with a progress line per phase and a summary table."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.services import DEMO_DOMAIN, DEMO_PASSWORD, Options, Seeder, demo_counts, demo_email, plan_for
from velro.progress import Progress


class Command(BaseCommand):
    help = (
        "DEBUG only: create (or top up) the demo dataset through the services — demo people "
        f"demo01@{DEMO_DOMAIN} … (password {DEMO_PASSWORD!r} unless --password), some registered "
        "in the last week, projects, style stacks (from presets, public, forks, contributors) and "
        "generations in every status. Idempotent: a second run adds nothing. Touches demo people only."
    )

    def add_arguments(self, parser):
        defaults = Options()
        parser.add_argument("--users", type=int, default=defaults.users, help="demo people (default %(default)s)")
        parser.add_argument(
            "--recent-users",
            type=int,
            default=defaults.recent_users,
            help="of them, registered in the last 7 days (default %(default)s); the others over the past months",
        )
        parser.add_argument("--projects", type=int, default=defaults.projects, help="default %(default)s")
        parser.add_argument(
            "--generations",
            type=int,
            default=defaults.generations,
            help="across models and statuses (default %(default)s)",
        )
        parser.add_argument(
            "--stacks",
            type=int,
            default=defaults.stacks,
            help="style stacks, forks included (default %(default)s)",
        )
        parser.add_argument(
            "--seed", type=int, default=defaults.seed, help="random seed: same seed, same data (default %(default)s)"
        )
        parser.add_argument(
            "--password",
            default=defaults.password,
            help="password of demo people created now (default %(default)r); existing ones keep theirs",
        )
        parser.add_argument(
            "--render",
            type=int,
            default=defaults.render,
            help=(
                "completed generations rendered by the local provider (default %(default)s; at least one per kind); "
                "the rest point at those files"
            ),
        )
        parser.add_argument("--quiet", action="store_true", help="no progress or table: one line at the end")

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("seed_demo runs only with DEBUG on: demo people have a known password.")
        options = Options(
            users=opts["users"],
            recent_users=opts["recent_users"],
            projects=opts["projects"],
            generations=opts["generations"],
            stacks=opts["stacks"],
            seed=opts["seed"],
            password=opts["password"],
            render=opts["render"],
        )
        problems = options.problems()
        if problems:
            raise CommandError("; ".join(problems))
        quiet = opts["quiet"] or opts["verbosity"] < 1
        tty = self.stdout.isatty()

        started = time.monotonic()
        plan = plan_for(options)
        before = demo_counts()

        def progress(label, total):
            return Progress(self.stdout, label, total, tty=tty, enabled=not quiet)

        seeder = Seeder(plan, progress=progress)
        seeder.run()
        after = demo_counts(seeder.now)
        elapsed = time.monotonic() - started

        if opts["verbosity"] < 1:
            return
        added = {name: after[name] - before.get(name, 0) for name in after}
        # The login, when this run made the people (as ensure_dev_admin shows its own once).
        login = (
            f"sign in as {demo_email(1)} … {demo_email(after['users'])} with {options.password!r}"
            if added["users"]
            else ""
        )
        if quiet:
            made = [
                f"{added[name]} {name}" for name in ("users", "projects", "style stacks", "generations") if added[name]
            ]
            self.stdout.write(
                f"Demo data: {after['users']} users, {after['projects']} projects, {after['style stacks']} style "
                f"stacks, {after['generations']} generations "
                + (f"({', '.join(made)} added in {elapsed:.1f} s)" if made else "(complete, nothing added)")
                + (f"; {login}" if login else "")
            )
            return
        self.stdout.write("")
        self._table(after, added)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo data ready in {elapsed:.1f} s (seed {options.seed})."))
        if login:
            self.stdout.write(login[0].upper() + login[1:] + ".")

    def _table(self, totals: dict, added: dict) -> None:
        """One row per count; "generations: failed" is shown as an indented "failed"."""
        width = max(len(name) for name in totals)
        self.stdout.write(f"{'what':<{width}}  {'total':>6}  {'added':>6}")
        self.stdout.write(f"{'-' * width}  {'-' * 6}  {'-' * 6}")
        for name, total in totals.items():
            label = "  " + name.split(": ", 1)[1] if ": " in name else name
            line = f"{label:<{width}}  {total:>6}"
            self.stdout.write(f"{line}  {added[name]:>+6}" if added[name] else line)
