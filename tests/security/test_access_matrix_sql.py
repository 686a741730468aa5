"""Who may do what with every table, at the SQL level: one table of expectations, every
cell run for real.

MATRIX below has a row for every table in the ``public`` and ``auth`` schemas and every
operation. Each cell runs its statement as that actor — ``SET ROLE`` plus the JWT claims,
as the RLS glue does (``tests.conftest.as_role``) — inside a savepoint that is always
rolled back, and compares the outcome with the cell. A table with no rows here, or rows
for a table that is gone, fails the suite.
"""

import dataclasses
import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import FlowState, OneTimeToken
from accounts.sessions import session_start
from billing.models import CreditPack, Order, Plan, StripeCustomer, StripeEvent
from generations.models import AIModel, WebhookDelivery
from generations.services import generation_create, worker_heartbeat
from health.models import BackupRun
from projects.services import project_create
from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack
from stylestacks.services import stylestack_create
from tests.conftest import as_role
from tests.factories import UserFactory

LEGEND = """
**Actors.** `anon`: nobody signed in (role `anon`). `owner`: alice (role `authenticated`).
`other`: bob, signed in, owning nothing in scope, nothing shared with him. `editor` /
`viewer`: carol / dave, contributors of alice's stack S1 (stack tables only). `staff`: the
owner connection, no role switch — the admin and `manage.py`. `service_role`: the
service side (BYPASSRLS), e.g. signed provider webhooks.

**Rows in scope.** Tables with owners (and `auth.users`): alice's rows and those of zed,
a third person who is never an actor. alice has a generation, a private and a public
project, and stacks S1 (private, shared with carol as editor and dave as viewer), S2
(private, shared with erin), S3 (public) and S4 (unlisted); zed the same kinds of project
and generation, a private stack shared with erin and a public one. S1 and zed's private
stack each have a pending invite (an address with no account). The catalog and
presets: the test's own active and inactive row. Every other table: every row.

**Cells.** select, update and delete name the rows reached (several joined by `+`):
`all` every row in scope · `own` the actor's own rows (alice's, in the owner column) ·
`public` rows anyone may read (public projects, active models and presets, public and
unlisted stacks) · `shared` stacks shared with the actor, their contributors and versions ·
`self` the contributor row naming the actor (leaving a stack) · `none` the statement runs
and reaches nothing: RLS hides every row. Errors: `denied` permission denied (no grant) ·
`blocked` a trigger refuses it (the append-only ledger). An update cell ending in
`cols:a,b` may change only those columns (each reaching the rows named); changing any
other column fails (no grant, or a trigger: editors and `visibility`). Without `cols:`
every column. insert adds one row in alice's name: `ok` stored as given · `trigger`
stored, but a trigger reset the server-owned values it was given (counters, flags, who
invited) · `refused` an RLS policy's WITH CHECK · `denied`. `—`: not applicable.
"""

ACTORS = ("anon", "owner", "other", "editor", "viewer", "staff", "service_role")
OPERATIONS = ("select", "insert", "update", "delete")
NA = "—"
ERRORS = ("denied", "blocked", "refused")
WORDS = ("all", "own", "public", "shared", "self", "none")

# Django's own tables and identities: no API role has any grant; staff (the admin) all.
# fmt: off
DJANGO = {
    #          anon      owner     other     editor viewer staff  service_role
    "select": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
    "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "denied"),
    "update": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
    "delete": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
}
# fmt: on
# The columns the API role may update.
PROFILE = "cols:full_name,avatar_url,metadata"
PROJECT = "cols:name,description,visibility,archived_at"
STACK = "cols:name,description,tags,category,visibility,style,compatible_models"
EDITOR = "cols:name,description,tags,category,style,compatible_models"  # not visibility (a trigger)
DELIVERY = "all cols:outcome,status_code,reason,generation_id"  # a webhook delivery's outcome
# fmt: off
# The task queue (procrastinate, velro migration 0003): the owner's (the app, its worker)
# and the service side's; no API role has any grant.
QUEUE = {
    #          anon      owner     other     editor viewer staff  service_role
    "select": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
    "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    "delete": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
}
# fmt: on

# Sign-in secrets (refresh tokens, emailed tokens, PKCE flows): the owner's (the app)
# and the service side's, as the task queue's.
SECRETS = QUEUE

# fmt: off
# Billing's catalog (packs, plans): everyone reads the active rows; staff edit them.
CATALOG = {
    #          anon      owner     other     editor viewer staff  service_role
    "select": ("public", "public", "public", NA,    NA,    "all", "all"),
    "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "denied"),
    "update": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
    "delete": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
}
# Stripe's events and customers: the service side records them and never deletes.
# Staff's two-factor devices and recovery codes: the owner connection (the admin's
# sign-in) and the service side only.
SIGN_IN_SECRETS = {
    #          anon      owner     other     editor viewer staff  service_role
    "select": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
    "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    "delete": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
}
SERVICE_RECORDS = {
    #          anon      owner     other     editor viewer staff  service_role
    "select": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
    "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    "delete": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
}
# fmt: on

# fmt: off
MATRIX = {
    "auth.users": DJANGO,
    "auth.sessions": {
        # A person reads and ends (deletes) their own sessions: GET/DELETE /api/v1/me/sessions.
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("denied", "own",    "none",   NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "delete": ("denied", "own",    "none",   NA,    NA,    "all", "all"),
    },
    "auth.refresh_tokens": SECRETS,
    "auth.one_time_tokens": SECRETS,
    "auth.flow_state": SECRETS,
    "auth.users_groups": DJANGO,
    "auth.users_user_permissions": DJANGO,
    "public.users": {
        #          anon      owner             other              editor viewer staff  service_role
        "select": ("denied", "own",            "none",            NA,    NA,    "all", "all"),
        "insert": ("denied", "denied",         "denied",          NA,    NA,    "ok",  "ok"),
        "update": ("denied", f"own {PROFILE}", f"none {PROFILE}", NA,    NA,    "all", "all"),
        "delete": ("denied", "denied",         "denied",          NA,    NA,    "all", "all"),
    },
    "public.credit_transactions": {
        #          anon      owner     other     editor viewer staff      service_role
        "select": ("denied", "own",    "none",   NA,    NA,    "all",     "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",      "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "blocked", "denied"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "blocked", "denied"),
    },
    "public.projects": {
        #          anon      owner             other              editor viewer staff      service_role
        "select": ("public", "own+public",     "public",          NA,    NA,    "all",     "all"),
        "insert": ("denied", "trigger",        "refused",         NA,    NA,    "trigger", "trigger"),
        "update": ("denied", f"own {PROJECT}", f"none {PROJECT}", NA,    NA,    "all",     "all"),
        "delete": ("denied", "own",            "none",            NA,    NA,    "all",     "all"),
    },
    "public.ai_models": {
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("public", "public", "public", NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    },
    "public.generations": {
        #          anon      owner                   other                    editor viewer staff  service_role
        "select": ("denied", "own",                  "none",                  NA,    NA,    "all", "all"),
        "insert": ("denied", "denied",               "denied",                NA,    NA,    "ok",  "ok"),
        "update": ("denied", "own cols:is_favorite", "none cols:is_favorite", NA,    NA,    "all", "all"),
        # alice's generation is pending: deleting it reaches nothing until it is cancelled.
        "delete": ("denied", "none",                 "none",                  NA,    NA,    "all", "all"),
    },
    # Per-person counts of generations (generations 0015): the owner reads theirs;
    # only the triggers on generations write them (no role has a write grant).
    "public.generation_stats": {
        #          anon      owner     other     editor viewer staff     service_role
        "select": ("denied", "own",    "none",   NA,    NA,    "all",    "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",     "denied"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all",    "denied"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all",    "denied"),
    },
    # Status events of generations (generations 0018): the owner reads theirs (a
    # stream resuming); only the triggers on generations write them.
    "public.generation_events": {
        #          anon      owner     other     editor viewer staff     service_role
        "select": ("denied", "own",    "none",   NA,    NA,    "all",    "denied"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",     "denied"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all",    "denied"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all",    "denied"),
    },
    "public.webhook_deliveries": {
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", DELIVERY),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
    },
    # Generation workers' heartbeats (generations 0018): the workers (the owner) and the
    # service side; /metrics reads them. No API role has any grant.
    "public.worker_heartbeats": QUEUE,
    "public.style_stacks": {
        #          anon      owner           other            editor              viewer           staff  service_role
        "select": ("denied", "own+public",   "public",        "shared+public",    "shared+public", "all", "all"),
        "insert": ("denied", "trigger",      "refused",       "refused",          "refused",       "ok",  "ok"),
        "update": ("denied", f"own {STACK}", f"none {STACK}", f"shared {EDITOR}", f"none {STACK}", "all", "all"),
        "delete": ("denied", "own",          "none",          "none",             "none",          "all", "all"),
    },
    "public.stack_contributors": {
        #          anon      owner            other             editor            viewer            staff  service_role
        "select": ("denied", "own",           "none",           "shared",         "shared",         "all", "all"),
        "insert": ("denied", "trigger",       "refused",        "refused",        "refused",        "ok",  "ok"),
        "update": ("denied", "own cols:role", "none cols:role", "none cols:role", "none cols:role", "all", "all"),
        "delete": ("denied", "own",           "none",           "self",           "self",           "all", "all"),
    },
    # Pending invites (addresses with no account yet): the stack's owner reads and
    # withdraws them; only private.stack_contributor_add writes them.
    "public.stack_invites": {
        #          anon      owner     other     editor    viewer    staff  service_role
        "select": ("denied", "own",    "none",   "none",   "none",   "all", "all"),
        "insert": ("denied", "denied", "denied", "denied", "denied", "ok",  "ok"),
        "update": ("denied", "denied", "denied", "denied", "denied", "all", "all"),
        "delete": ("denied", "own",    "none",   "none",   "none",   "all", "all"),
    },
    "public.style_stack_versions": {
        #          anon      owner     other     editor    viewer    staff  service_role
        "select": ("denied", "own",    "none",   "shared", "shared", "all", "all"),
        "insert": ("denied", "denied", "denied", "denied", "denied", "ok",  "ok"),
        "update": ("denied", "denied", "denied", "denied", "denied", "all", "denied"),
        "delete": ("denied", "denied", "denied", "denied", "denied", "all", "denied"),
    },
    # Presets' previous documents (stylestacks 0008): staff-only; the service side reads
    # and adds them as it does stack versions.
    "public.style_preset_versions": {
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
    },
    "public.style_stack_presets": {
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("public", "public", "public", NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    },
    # Billing: the catalog is everyone's (active rows), changed by staff only; a person
    # reads their own orders; checkout and Stripe's webhooks write as the service side.
    "public.billing_credit_packs": CATALOG,
    "public.billing_plans": CATALOG,
    "public.billing_orders": {
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("denied", "own",    "none",   NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all", "denied"),
    },
    "public.billing_stripe_events": SERVICE_RECORDS,
    "public.billing_stripe_customers": SERVICE_RECORDS,
    # The rate-limit counters (Django's database cache): the app writes them as the owner.
    "public.cache_entries": {
        #          anon      owner     other     editor viewer staff  service_role
        "select": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "insert": ("denied", "denied", "denied", NA,    NA,    "ok",  "ok"),
        "update": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
        "delete": ("denied", "denied", "denied", NA,    NA,    "all", "all"),
    },
    # Staff's second factors (django-otp; staffauth): read by the admin's sign-in only.
    "public.otp_static_staticdevice": SIGN_IN_SECRETS,
    "public.otp_static_statictoken": SIGN_IN_SECRETS,
    "public.otp_totp_totpdevice": SIGN_IN_SECRETS,
    "public.procrastinate_jobs": QUEUE,
    # The record of backups (health): written by `manage.py backup` and the worker as the
    # owner; it names where copies of the whole database are, so no API role reads it.
    "public.backup_runs": QUEUE,
    "public.procrastinate_events": QUEUE,
    "public.procrastinate_periodic_defers": QUEUE,
    "public.procrastinate_workers": QUEUE,
    "public.auth_group": DJANGO,
    "public.auth_group_permissions": DJANGO,
    "public.auth_permission": DJANGO,
    "public.django_admin_log": DJANGO,
    "public.django_content_type": DJANGO,
    "public.django_migrations": DJANGO,
    "public.django_session": DJANGO,
}
# fmt: on


# --- how each table is exercised ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Table:
    """``scope``: which rows the statements aim at (a condition, run as the owner
    connection to list their keys). ``words``: what ``own``, ``public``, ``shared`` and
    ``self`` mean here (``%(me)s`` is the actor). ``insert``: one new row in alice's name,
    ``RETURNING`` whether the values it gave were kept; ``prepare`` runs first as the
    owner (in the same savepoint). ``%(name)s`` are the world's ids."""

    insert: str
    scope: str = "TRUE"
    key: str = "id"
    words: dict = dataclasses.field(default_factory=dict)
    prepare: str = ""
    # Updates write each column to itself, except these (a trigger guards real changes).
    changes: dict = dataclasses.field(default_factory=dict)


PEOPLE = "(%(alice)s, %(zed)s)"
STACKS_IN_SCOPE = f"(SELECT id FROM public.style_stacks WHERE user_id IN {PEOPLE})"
SHARED_WITH_ME = "(SELECT c.stack_id FROM public.stack_contributors AS c WHERE c.user_id = %(me)s)"
MY_STACKS = "(SELECT s.id FROM public.style_stacks AS s WHERE s.user_id = %(me)s)"
OWNED = {"own": "user_id = %(me)s"}

TABLES = {
    "auth.users": Table(
        scope=f"id IN {PEOPLE}",
        words={"own": "id = %(me)s"},
        insert="INSERT INTO auth.users (email, encrypted_password, raw_user_meta_data, raw_app_meta_data, is_staff, "
        "is_superuser, is_active) VALUES ('new@example.com', '', '{}', '{}', false, false, true) RETURNING true",
    ),
    "auth.sessions": Table(
        scope=f"user_id IN {PEOPLE}",
        words=OWNED,
        insert="INSERT INTO auth.sessions (user_id) VALUES (%(alice)s) RETURNING true",
    ),
    "auth.refresh_tokens": Table(
        insert="INSERT INTO auth.refresh_tokens (token, session_id, parent, revoked) "
        "VALUES ('matrix-new', %(session)s, '', false) RETURNING true",
    ),
    "auth.one_time_tokens": Table(
        insert="INSERT INTO auth.one_time_tokens (user_id, token_type, token_hash, relates_to) "
        "VALUES (%(alice)s, 'recovery_token', 'matrix-new', 'alice@example.com') RETURNING true",
    ),
    "auth.flow_state": Table(
        insert="INSERT INTO auth.flow_state (user_id, code_challenge, code_challenge_method, authentication_method) "
        "VALUES (%(alice)s, 'x', 'plain', 'signup') RETURNING true",
    ),
    "auth.users_groups": Table(
        insert="INSERT INTO auth.users_groups (user_id, group_id) VALUES (%(zed)s, %(group)s) RETURNING true",
    ),
    "auth.users_user_permissions": Table(
        insert="INSERT INTO auth.users_user_permissions (user_id, permission_id) VALUES (%(zed)s, %(permission)s) "
        "RETURNING true",
    ),
    "public.users": Table(
        scope=f"id IN {PEOPLE}",
        words={"own": "id = %(me)s"},
        # A profile for an identity that has none (alice's, removed first).
        prepare="DELETE FROM public.users WHERE id = %(alice)s",
        insert="INSERT INTO public.users (id, email, full_name, avatar_url, credits_balance, current_plan, is_active, "
        "metadata) VALUES (%(alice)s, 'alice@example.com', 'A', '', 1000000, 'enterprise', true, '{}') "
        "RETURNING credits_balance = 1000000",
    ),
    "public.credit_transactions": Table(
        scope=f"user_id IN {PEOPLE}",
        words=OWNED,
        insert="INSERT INTO public.credit_transactions (user_id, type, amount, balance_after, description) "
        "VALUES (%(alice)s, 'grant', 5, 80, 'forged') RETURNING true",
    ),
    "public.projects": Table(
        scope=f"user_id IN {PEOPLE}",
        words={**OWNED, "public": "visibility = 'public'"},
        insert="INSERT INTO public.projects (user_id, name, description, visibility, generation_count) "
        "VALUES (%(alice)s, 'Inserted', '', 'private', 99) RETURNING generation_count = 99",
    ),
    "public.ai_models": Table(
        scope="id LIKE 'matrix/%%'",
        words={"public": "is_active"},
        insert="INSERT INTO public.ai_models (id, provider, display_name, description, kind, credits_cost, "
        "max_prompt_length, parameter_schema, prompt_guide, supports_lora, supports_negative_prompt, "
        "supports_reference_image, is_active, sort_order) "
        "VALUES ('matrix/new', 'local', 'New', '', 'image', 1, 100, '{}', '{}', false, false, false, true, 0) "
        "RETURNING true",
    ),
    "public.generations": Table(
        scope=f"user_id IN {PEOPLE}",
        words=OWNED,
        insert="INSERT INTO public.generations (user_id, ai_model_id, prompt, parameters, status, credits_charged) "
        "VALUES (%(alice)s, 'fal-ai/flux/dev', 'free', '{}', 'completed', 0) RETURNING status = 'completed'",
    ),
    "public.generation_stats": Table(
        scope=f"user_id IN {PEOPLE}",
        key="(user_id, status, ai_model_id)::text",
        words=OWNED,
        insert="INSERT INTO public.generation_stats (user_id, status, ai_model_id, count, credits_charged) "
        "VALUES (%(alice)s, 'failed', 'matrix-model', 1, 0) RETURNING true",
    ),
    "public.generation_events": Table(
        scope=f"user_id IN {PEOPLE}",
        words=OWNED,
        insert="INSERT INTO public.generation_events (user_id, generation_id, status) "
        "VALUES (%(alice)s, gen_random_uuid(), 'pending') RETURNING true",
    ),
    "public.webhook_deliveries": Table(
        insert="INSERT INTO public.webhook_deliveries (provider, signature) VALUES ('matrix', 'sig-new') "
        "RETURNING true",
    ),
    "public.worker_heartbeats": Table(
        key="worker",
        insert="INSERT INTO public.worker_heartbeats (worker, hostname, pid, started_at, seen_at, claims) "
        "VALUES ('matrix:2', 'matrix', 2, now(), now(), 0) RETURNING true",
    ),
    "public.style_stacks": Table(
        scope=f"user_id IN {PEOPLE}",
        words={**OWNED, "public": "visibility IN ('public', 'unlisted')", "shared": f"id IN {SHARED_WITH_ME}"},
        insert="INSERT INTO public.style_stacks (user_id, name, description, tags, category, visibility, style, "
        "compatible_models, created_from, is_featured, usage_count, fork_count) VALUES (%(alice)s, 'Inserted', '', "
        "'{}', 'general', 'private', '{}', '{}', 'manual', true, 99, 7) "
        "RETURNING is_featured AND usage_count = 99 AND fork_count = 7",
        changes={"visibility": "CASE visibility WHEN 'private' THEN 'public' ELSE 'private' END"},
    ),
    "public.stack_contributors": Table(
        scope=f"stack_id IN {STACKS_IN_SCOPE}",
        words={
            "own": f"stack_id IN {MY_STACKS}",
            "shared": f"stack_id IN {SHARED_WITH_ME}",
            "self": "user_id = %(me)s",
        },
        # frank joins S1, "invited by zed".
        insert="INSERT INTO public.stack_contributors (stack_id, user_id, role, email, invited_by_id) "
        "VALUES (%(s1)s, %(frank)s, 'viewer', 'frank@example.com', %(zed)s) RETURNING invited_by_id = %(zed)s",
    ),
    "public.stack_invites": Table(
        scope=f"stack_id IN {STACKS_IN_SCOPE}",
        words={"own": f"stack_id IN {MY_STACKS}"},
        insert="INSERT INTO public.stack_invites (stack_id, email, role, invited_by_id) "
        "VALUES (%(s1)s, 'new@example.com', 'viewer', %(alice)s) RETURNING true",
    ),
    "public.style_stack_versions": Table(
        scope=f"stack_id IN {STACKS_IN_SCOPE}",
        words={"own": f"stack_id IN {MY_STACKS}", "shared": f"stack_id IN {SHARED_WITH_ME}"},
        insert="INSERT INTO public.style_stack_versions (stack_id, version, style) VALUES (%(s1)s, 99, '{}') "
        "RETURNING true",
    ),
    "public.style_preset_versions": Table(
        scope="preset_id IN (SELECT id FROM public.style_stack_presets WHERE slug LIKE 'matrix-%%')",
        insert="INSERT INTO public.style_preset_versions (preset_id, version, style) "
        "SELECT id, 99, '{}' FROM public.style_stack_presets WHERE slug = 'matrix-active' RETURNING true",
    ),
    "public.style_stack_presets": Table(
        scope="slug LIKE 'matrix-%%'",
        words={"public": "is_active"},
        insert="INSERT INTO public.style_stack_presets (slug, name, category, subcategory, description, creator, "
        "style, tags, complexity_level, recommended_models, preview_image_url, is_active, is_featured, rating, "
        "sort_order) VALUES ('matrix-new', 'New', 'general', '', '', 'x', '{}', '{}', 'beginner', '{}', '', true, "
        "false, 0, 0) RETURNING true",
    ),
    "public.billing_credit_packs": Table(
        words={"public": "active"},
        insert="INSERT INTO public.billing_credit_packs (slug, name, credits, price, currency, stripe_price_id, "
        "active, sort_order) VALUES ('matrix-new', 'New', 1000000, 1, 'usd', '', true, 0) RETURNING true",
    ),
    "public.billing_plans": Table(
        words={"public": "active"},
        prepare="DELETE FROM public.billing_plans WHERE slug = 'basic'",
        insert="INSERT INTO public.billing_plans (slug, name, monthly_price, currency, monthly_credits, "
        "stripe_price_id, active, sort_order) VALUES ('basic', 'Free lunch', 0, 'usd', 1000000, '', true, 0) "
        "RETURNING true",
    ),
    "public.billing_orders": Table(
        scope=f"user_id IN {PEOPLE}",
        words=OWNED,
        insert="INSERT INTO public.billing_orders (user_id, kind, pack_id, state, amount, currency, credits) "
        "VALUES (%(alice)s, 'pack', %(pack)s, 'paid', 1, 'usd', 1000000) RETURNING true",
    ),
    "public.billing_stripe_events": Table(
        insert="INSERT INTO public.billing_stripe_events (id, type, outcome) VALUES ('evt_matrix_new', 'x', 'applied') "
        "RETURNING true",
    ),
    "public.billing_stripe_customers": Table(
        key="user_id",
        insert="INSERT INTO public.billing_stripe_customers (user_id, customer_id) VALUES (%(alice)s, 'cus_new') "
        "RETURNING true",
    ),
    "public.cache_entries": Table(
        key="cache_key",
        insert="INSERT INTO public.cache_entries (cache_key, value, expires) VALUES ('matrix-new', '', now()) "
        "RETURNING true",
    ),
    "public.otp_static_staticdevice": Table(
        insert="INSERT INTO public.otp_static_staticdevice (user_id, name, confirmed, throttling_failure_count) "
        "VALUES (%(alice)s, 'matrix-new', true, 0) RETURNING true",
    ),
    "public.otp_static_statictoken": Table(
        insert="INSERT INTO public.otp_static_statictoken (device_id, token) "
        "SELECT id, 'matrixnew' FROM public.otp_static_staticdevice LIMIT 1 RETURNING true",
    ),
    "public.otp_totp_totpdevice": Table(
        insert="INSERT INTO public.otp_totp_totpdevice (user_id, name, confirmed, key, step, t0, digits, tolerance, "
        "drift, last_t, throttling_failure_count) VALUES (%(alice)s, 'matrix-new', true, '00', 30, 0, 6, 1, 0, -1, 0) "
        "RETURNING true",
    ),
    "public.procrastinate_jobs": Table(
        insert="INSERT INTO public.procrastinate_jobs (queue_name, task_name, args) "
        "VALUES ('matrix', 'matrix.new', '{}') RETURNING true",
    ),
    "public.backup_runs": Table(
        insert="INSERT INTO public.backup_runs (storage, status, row_counts, started_at) "
        "VALUES ('local', 'taken', '{}', now()) RETURNING true",
    ),
    "public.procrastinate_events": Table(
        insert="INSERT INTO public.procrastinate_events (job_id, type) VALUES (%(job)s, 'deferred') RETURNING true",
    ),
    "public.procrastinate_periodic_defers": Table(
        insert="INSERT INTO public.procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp) "
        "VALUES ('matrix', 'new', 2) RETURNING true",
    ),
    "public.procrastinate_workers": Table(
        insert="INSERT INTO public.procrastinate_workers DEFAULT VALUES RETURNING true",
    ),
    "public.auth_group": Table(insert="INSERT INTO public.auth_group (name) VALUES ('matrix-new') RETURNING true"),
    "public.auth_group_permissions": Table(
        insert="INSERT INTO public.auth_group_permissions (group_id, permission_id) "
        "VALUES (%(group)s, %(other_permission)s) RETURNING true",
    ),
    "public.auth_permission": Table(
        insert="INSERT INTO public.auth_permission (name, content_type_id, codename) "
        "VALUES ('New', %(content_type)s, 'matrix_new') RETURNING true",
    ),
    "public.django_admin_log": Table(
        insert="INSERT INTO public.django_admin_log (action_time, object_id, object_repr, action_flag, "
        "change_message, content_type_id, user_id) VALUES (now(), '1', 'x', 1, '', NULL, %(alice)s) RETURNING true",
    ),
    "public.django_content_type": Table(
        insert="INSERT INTO public.django_content_type (app_label, model) VALUES ('matrix', 'new') RETURNING true",
    ),
    "public.django_migrations": Table(
        insert="INSERT INTO public.django_migrations (app, name, applied) VALUES ('matrix', 'new', now()) "
        "RETURNING true",
    ),
    "public.django_session": Table(
        key="session_key",
        insert="INSERT INTO public.django_session (session_key, session_data, expire_date) "
        "VALUES ('matrix-new', '', now()) RETURNING true",
    ),
}


def database_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'auth') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        )
        return {name for (name,) in cursor.fetchall()}


# --- the world -------------------------------------------------------------------------

NOIR = {"schema_version": 2, "prompt_blocks": {"style": {"text": "high-contrast black and white"}}}
NEON = {"schema_version": 2, "prompt_blocks": {"style": {"text": "neon-soaked cyberpunk night"}}}


@pytest.fixture
def world(alice, bob):
    """alice's and zed's rows in every table with owners (see LEGEND), the catalog's and
    presets' test rows, and a row in each of Django's tables that starts empty."""
    people = {"alice": alice, "bob": bob}
    for name in ("carol", "dave", "erin", "zed", "frank"):
        people[name] = UserFactory(email=f"{name}@example.com", raw_user_meta_data={})
    alice, zed, erin = people["alice"], people["zed"], people["erin"]

    for owner in (alice, zed):
        project_create(user=owner, name="Private")
        project_create(user=owner, name="Public", visibility="public")
        generation_create(user=owner, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="a heron")
    stacks = {
        "s1": stylestack_create(user=alice, name="S1", style=NOIR),
        "s2": stylestack_create(user=alice, name="S2", style=NOIR),
        "s3": stylestack_create(user=alice, name="S3", style=NOIR, visibility="public"),
        "s4": stylestack_create(user=alice, name="S4", style=NOIR, visibility="unlisted"),
        "z1": stylestack_create(user=zed, name="Z1", style=NOIR),
        "z2": stylestack_create(user=zed, name="Z2", style=NOIR, visibility="public"),
    }
    for stack, person, role in (
        ("s1", people["carol"], "editor"),
        ("s1", people["dave"], "viewer"),
        ("s2", erin, "viewer"),
        ("z1", erin, "viewer"),
    ):
        StackContributor.objects.create(stack=stacks[stack], user=person, role=role, email=person.email)
    for stack in ("s1", "z1"):  # an address with no account, invited to S1 and Z1
        StackInvite.objects.create(stack=stacks[stack], email="pending@example.com", role="viewer")
    # keep_version keeps version 1 of S1, S2, S3 and Z1.
    StyleStack.objects.filter(pk__in=[stacks[name].pk for name in ("s1", "s2", "s3", "z1")]).update(style=NEON)

    AIModel.objects.create(id="matrix/active", display_name="Active", kind="image", credits_cost=1)
    AIModel.objects.create(id="matrix/inactive", display_name="Inactive", kind="image", credits_cost=1, is_active=False)
    StylePreset.objects.create(slug="matrix-active", name="Active", style=NOIR)
    StylePreset.objects.create(slug="matrix-inactive", name="Inactive", style=NOIR, is_active=False)
    StylePreset.objects.filter(slug="matrix-active").update(style=NEON)  # keep_version keeps version 1
    WebhookDelivery.objects.create(provider="matrix", signature="sig-matrix")
    pack = CreditPack.objects.get(slug="starter")
    Plan.objects.filter(slug="pro").update(active=False)
    CreditPack.objects.create(slug="matrix-inactive", name="Inactive", credits=1, price=1, active=False)
    for owner in (alice, zed):
        Order.objects.create(user=owner, kind="pack", pack=pack, amount=500, currency="usd", credits=500)
    StripeCustomer.objects.create(user=zed, customer_id="cus_zed")
    StripeEvent.objects.create(id="evt_matrix", type="checkout.session.completed", outcome="applied")

    permission, other_permission = Permission.objects.order_by("id")[:2]
    group = Group.objects.create(name="matrix")
    group.permissions.add(permission)
    alice.groups.add(group)
    alice.user_permissions.add(permission)
    content_type = ContentType.objects.get_for_model(StyleStack)
    LogEntry.objects.create(user=alice, content_type=content_type, object_repr="S1", action_flag=1)
    Session.objects.create(session_key="matrix", session_data="", expire_date=timezone.now())
    # Sign-in: a session of alice's and of zed's (with a refresh token each), an emailed
    # token and a PKCE flow of zed's.
    sessions = {name: session_start(people[name]).session for name in ("alice", "zed")}
    flow = FlowState.objects.create(
        user=zed, code_challenge="x", code_challenge_method="plain", authentication_method="signup"
    )
    OneTimeToken.objects.create(
        user=zed, token_type="recovery_token", token_hash="matrix", relates_to=zed.email, flow_state=flow
    )
    # Staff sign-in: zed's authenticator app and recovery codes.
    TOTPDevice.objects.create(user=zed, name="matrix", confirmed=True)
    StaticDevice.objects.create(user=zed, name="matrix", confirmed=True).token_set.create(token="matrix")
    if "public.cache_entries" in database_tables():
        cache.set("matrix", 1)
    # A backup's record.
    BackupRun.objects.create(name="matrix.dump", storage="local", status="taken", started_at=timezone.now())
    # The task queue: a job (its "deferred" event comes from a trigger), a worker, and a
    # periodic task's record of having deferred the job.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO public.procrastinate_jobs (queue_name, task_name, args) VALUES ('matrix', 'matrix', '{}') "
            "RETURNING id"
        )
        (job,) = cursor.fetchone()
        cursor.execute("SELECT public.procrastinate_register_worker_v1()")
        cursor.execute(
            "INSERT INTO public.procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp, job_id) "
            "VALUES ('matrix', '', 1, %s)",
            [job],
        )
    # A generation worker's heartbeat (generations 0018), as run_worker writes it.
    worker_heartbeat(
        worker="matrix:1", hostname="matrix", pid=1, started_at=timezone.now(), last_claim_at=None, claims=0
    )

    return {
        "people": people,
        "ids": {
            **{name: person.pk for name, person in people.items()},
            **{name: stack.pk for name, stack in stacks.items()},
            "group": group.pk,
            "permission": permission.pk,
            "other_permission": other_permission.pk,
            "content_type": content_type.pk,
            "job": job,
            "session": sessions["alice"].pk,
            "pack": pack.pk,
        },
    }


# --- running a cell ------------------------------------------------------------------

ACTOR_PEOPLE = {"owner": "alice", "other": "bob", "editor": "carol", "viewer": "dave"}
ACTOR_ROLES = {"anon": "anon", "service_role": "service_role", "staff": None}


class Undo(Exception):
    """Raised to roll a cell's savepoint back after reading its result."""


def error_word(exc: DatabaseError) -> str:
    message = str(exc)
    if "row-level security" in message:
        return "refused"
    if "permission denied" in message:
        return "denied"
    if (getattr(exc.__cause__, "sqlstate", None) or "").startswith("VL"):
        return "blocked"  # our own SQLSTATEs (velro/db_errors.py): raised by a trigger
    return f"error: {message.strip()}"


@dataclasses.dataclass
class Cell:
    """One table's world, seen by one actor."""

    world: dict
    table: str
    actor: str

    @property
    def spec(self) -> Table:
        return TABLES[self.table]

    @property
    def person(self):
        return self.world["people"].get(ACTOR_PEOPLE.get(self.actor))

    @property
    def params(self) -> dict:
        me = self.person.pk if self.person is not None else uuid.uuid4()
        return {**self.world["ids"], "me": me, "keys": self.world["keys"][self.table]}

    def run(self, statement: str, prepare: str = ""):
        """``statement`` as this actor, always undone: its rows, or an error word."""
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    if prepare:
                        cursor.execute(prepare, self.params)
                role = ACTOR_ROLES.get(self.actor, "authenticated")
                with as_role(role, self.person) if role else connection.cursor() as cursor:
                    cursor.execute(statement, self.params)
                    result = cursor.fetchall()
                    raise Undo
        except Undo:
            return result
        except DatabaseError as exc:
            return error_word(exc)

    def rows(self, statement: str):
        result = self.run(statement)
        return result if isinstance(result, str) else frozenset(key for (key,) in result)

    def outcome(self, op: str):
        """A set of keys or an error word; ``ok``/``trigger`` for an insert; for an
        update, a dict column -> keys or error word."""
        spec, table = self.spec, self.table
        where = f"{spec.key} = ANY(%(keys)s)"
        if op == "select":
            return self.rows(f"SELECT {spec.key} FROM {table} WHERE {where}")
        if op == "delete":
            return self.rows(f"DELETE FROM {table} WHERE {where} RETURNING {spec.key}")
        if op == "insert":
            result = self.run(spec.insert, spec.prepare)
            if isinstance(result, str):
                return result
            return {((True,),): "ok", ((False,),): "trigger"}.get(tuple(result), f"unexpected rows {result}")
        return {
            column: self.rows(
                f"UPDATE {table} SET {column} = {spec.changes.get(column, column)} WHERE {where} RETURNING {spec.key}"
            )
            for column in self.world["columns"][table]
        }

    def expected_rows(self, words: str) -> frozenset:
        """The keys ``words`` (e.g. ``own+public``) names for this actor."""
        keys = frozenset()
        for word in words.split("+"):
            assert word in WORDS, f"{self.table}: unknown word {word!r}"
            if word == "all":
                keys |= frozenset(self.world["keys"][self.table])
            elif word != "none":
                assert word in self.spec.words, f"{self.table}: {word!r} means nothing here"
                keys |= frozenset(owner_keys(self.table, self.params, self.spec.words[word]))
        return keys

    def mismatch(self, op: str, cell: str) -> str | None:
        """Why this actor's outcome differs from ``cell``, or None."""
        got = self.outcome(op)
        if op == "insert" or (cell in ERRORS and op != "update"):
            return None if got == cell else f"got {describe(got)}"
        if op != "update":
            want = self.expected_rows(cell)
            return None if got == want else f"got {describe(got)}, the cell means {describe(want)}"
        if cell in ERRORS:
            wrong = {column: value for column, value in got.items() if value != cell}
            return None if not wrong else f"columns that are not {cell!r}: {describe_columns(wrong)}"
        words, _, columns = cell.partition(" cols:")
        writable = set(columns.split(",")) if columns else set(got)
        assert writable <= set(got), f"{self.table}: no such columns {sorted(writable - set(got))}"
        want = self.expected_rows(words)
        wrong = {
            column: value
            for column, value in got.items()
            if (value != want if column in writable else value not in ("denied", "blocked"))
        }
        return (
            None if not wrong else f"the writable columns should reach {describe(want)}; got {describe_columns(wrong)}"
        )


def owner_keys(table: str, params: dict, condition: str = "TRUE") -> list:
    """As the owner connection: the keys of ``table``'s rows in scope meeting ``condition``."""
    spec = TABLES[table]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {spec.key} FROM {table} WHERE ({spec.scope}) AND ({condition})", params)
        return sorted(key for (key,) in cursor.fetchall())


def columns_of(table: str) -> list[str]:
    """The columns an update can name: a GENERATED ALWAYS identity (procrastinate_workers.id)
    can only be set to DEFAULT, by anyone, so it has no cell to check."""
    schema, name = table.split(".")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "AND identity_generation IS DISTINCT FROM 'ALWAYS' ORDER BY ordinal_position",
            [schema, name],
        )
        return [column for (column,) in cursor.fetchall()]


def describe(value) -> str:
    if isinstance(value, str):
        return value
    return f"{len(value)} row(s) {sorted(map(str, value))[:6]}"


def describe_columns(wrong: dict) -> str:
    return "; ".join(f"{column}: {describe(value)}" for column, value in wrong.items())


@pytest.fixture
def scoped(world):
    """The world plus, per existing table, the keys of the rows in scope and its columns."""
    world["keys"], world["columns"] = {}, {}
    for table in sorted(database_tables() & set(TABLES)):
        world["keys"][table] = owner_keys(table, {**world["ids"], "me": None})
        world["columns"][table] = columns_of(table)
    return world


@pytest.mark.parametrize("table", list(MATRIX))
def test_access_matrix_sql(scoped, table):
    """Every cell of ``table``'s four rows, run as its actor."""
    assert table in scoped["keys"], f"{table} does not exist: remove its rows"
    assert scoped["keys"][table], f"{table}: the world has no rows in scope"
    problems = {}
    for op in OPERATIONS:
        for actor, cell in zip(ACTORS, MATRIX[table][op], strict=True):
            if cell != NA and (problem := Cell(scoped, table, actor).mismatch(op, cell)):
                problems[f"{op} as {actor}"] = f"cell {cell!r}: {problem}"
    assert problems == {}


# --- the matrix covers the database, and means something -------------------------------


def test_every_table_has_a_row_for_each_operation():
    assert list(MATRIX) == list(TABLES)
    assert {table: tuple(rows) for table, rows in MATRIX.items() if tuple(rows) != OPERATIONS} == {}


def test_every_table_in_public_and_auth_has_rows_and_no_row_is_stale(db):
    tables = database_tables()
    assert sorted(tables - set(MATRIX)) == [], "tables with no rows in MATRIX (add them, and a Table in TABLES)"
    assert sorted(set(MATRIX) - tables) == [], "MATRIX has rows for tables that no longer exist"


def test_the_words_tell_the_rows_apart(scoped):
    """In every table each word names a different, non-empty set of rows (for the actor
    it is written for), so a cell with the wrong word fails."""
    writer = {"own": "owner", "public": "other", "shared": "editor", "self": "editor"}
    for table in scoped["keys"]:
        spec = TABLES[table]
        sets = {"all": frozenset(scoped["keys"][table])}
        sets.update({word: Cell(scoped, table, writer[word]).expected_rows(word) for word in spec.words})
        assert all(sets.values()), f"{table}: a word names no row: {sets}"
        assert len(set(sets.values())) == len(sets), f"{table}: two words name the same rows: {sets}"
        for word, other in (("public", "own"), ("shared", "public"), ("self", "public")):
            if word in sets and other in sets:
                assert sets[word] - sets[other], f"{table}: {other}+{word} would be the same as {other}"
