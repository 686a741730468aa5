"""``manage.py import_supabase`` (issue 16, "Moving over"): a source database built here in
Supabase's shape (GoTrue's auth.users with real bcrypt hashes, the old product's public
tables per DOMAIN.md), good rows and bad ones, imported by its URL and from pg_dump files."""

import json
import subprocess
import uuid
from datetime import UTC, datetime

import bcrypt
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

from accounts.models import Profile, User
from credits.models import CreditTransaction
from credits.selectors import credits_invariant_violations
from generations.models import Generation
from health.base import Level
from health.services import health_report
from projects.models import Project
from stylestacks.models import StyleStack
from supabase_import.source import restore_list
from tests.helpers import database_url
from velro.pg_client import find_binary, libpq_params, pg_env, server_major

# GoTrue's auth.users (as of 2024-2025; the columns the import reads and the ones around them).
SCHEMA = """
CREATE SCHEMA auth;
CREATE TABLE auth.users (
  instance_id uuid,
  id uuid NOT NULL PRIMARY KEY,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  recovery_token varchar(255),
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text DEFAULT NULL UNIQUE,
  phone_confirmed_at timestamptz,
  confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
  banned_until timestamptz,
  is_sso_user boolean NOT NULL DEFAULT false,
  deleted_at timestamptz,
  is_anonymous boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE is_sso_user = false;

-- The old product's tables (DOMAIN.md). No foreign key from profiles to identities:
-- the old SQL was applied by hand, and the test needs a profile without one.
CREATE TABLE public.users (
  id uuid PRIMARY KEY,
  email text NOT NULL,
  full_name text,
  avatar_url text,
  is_active boolean DEFAULT true,
  credits_balance integer DEFAULT 1000,
  current_plan text DEFAULT 'free',
  metadata jsonb DEFAULT '{}',
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE TABLE public.projects (
  id uuid PRIMARY KEY DEFAULT UUID_DEFAULT,
  user_id uuid NOT NULL REFERENCES public.users (id),
  name varchar(100) NOT NULL,
  description varchar(500),
  visibility text DEFAULT 'private',
  tags text[] DEFAULT '{}',
  metadata jsonb DEFAULT '{}',
  generation_count integer DEFAULT 0,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE TABLE public.style_stacks (
  id uuid PRIMARY KEY DEFAULT UUID_DEFAULT,
  user_id uuid NOT NULL,
  name varchar(100) NOT NULL,
  description text,
  base_json jsonb DEFAULT '{}',
  prompt_blocks jsonb DEFAULT '{}',
  model_adaptations jsonb DEFAULT '{}',
  lora_configs jsonb DEFAULT '{}',
  persistent_elements jsonb DEFAULT '[]',
  tags text[] DEFAULT '{}',
  category text DEFAULT 'general',
  version integer DEFAULT 1,
  parent_stack_id uuid REFERENCES public.style_stacks (id),
  created_from text DEFAULT 'manual',
  is_public boolean DEFAULT false,
  is_featured boolean DEFAULT false,
  is_marketplace boolean DEFAULT false,
  price_credits integer DEFAULT 0,
  royalty_rate numeric(3, 2) DEFAULT 0.7,
  usage_count integer DEFAULT 0,
  fork_count integer DEFAULT 0,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE TABLE public.generations (
  id uuid PRIMARY KEY DEFAULT UUID_DEFAULT,
  user_id uuid NOT NULL,
  project_id uuid,
  style_stack_id uuid,
  model_id text NOT NULL,
  status text DEFAULT 'pending',
  prompt text NOT NULL,
  negative_prompt text,
  parameters jsonb DEFAULT '{}',
  outputs jsonb DEFAULT '[]',
  credits_used integer DEFAULT 0,
  error_message text,
  is_favorite boolean DEFAULT false,
  parent_generation_id uuid,
  adapted_prompt text,
  adaptation_metadata jsonb,
  processing_time_ms integer,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  completed_at timestamptz
);
CREATE TABLE public.credit_transactions (
  id uuid PRIMARY KEY DEFAULT UUID_DEFAULT,
  user_id uuid NOT NULL,
  generation_id uuid,
  type text NOT NULL,
  amount integer NOT NULL,
  balance_after integer,
  description text,
  metadata jsonb DEFAULT '{}',
  created_at timestamptz DEFAULT now()
);
"""


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def gotrue_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a")).decode()


def when(month: int, day: int = 1) -> datetime:
    return datetime(2024, month, day, 12, 0, tzinfo=UTC)


ALICE, BOB, CAROL, DAVE, ERIN = uid(1), uid(2), uid(3), uid(4), uid(5)
ALICE_AGAIN, GONE, PHONE_ONLY, IN_DEBT, NO_IDENTITY = uid(11), uid(12), uid(13), uid(14), uid(15)
PASSWORDS = {ALICE: "alice-old-password", BOB: "bob-old-password"}
P_NOIR, P_NOIR_AGAIN, P_BOB, P_IN_DEBT, P_TEAM = uid(101), uid(102), uid(103), uid(104), uid(105)
S_NOIR, S_FORK, S_BAD = uid(201), uid(202), uid(203)
G_DONE, G_PENDING, G_UNKNOWN_MODEL, G_BAD_PROJECT, G_NO_URL, G_LONG = (uid(n) for n in range(301, 307))

OUTPUT_URL = "https://old.supabase.co/storage/v1/object/public/outputs/noir.png"
NOIR_STACK = {  # DOMAIN.md's genre stack, in the old shape (plain blocks, plain adaptations)
    "base_json": {"genre": "film_noir", "lighting": "high_contrast"},
    "prompt_blocks": {
        "description": "detective waits in a rain-soaked alley",
        "style": "high-contrast black and white",
        "camera": "low angle, dutch tilt",
        "lighting": "venetian-blind shadows",
        "setting": "1940s city at night",
        "elements": ["fedora", "cigarette smoke"],
        "motion": "slow push-in",
        "ending": "his face revealed",
        "keywords": ["noir", "shadows"],
    },
    "model_adaptations": {"fal-ai/veo3": {"motion": "slow dolly through rain"}},
    "lora_configs": {"noir": {"model_id": "fal-ai/flux/dev", "lora_path": "loras/noir", "weight": 0.8}},
    "persistent_elements": [{"type": "character", "description": "tall man, grey trench coat", "weight": 1.5}],
}
BAD_STACK = {"persistent_elements": [{"type": "character", "description": "giant", "weight": 3}]}
LONG_PROMPT = "rain " * 300  # 1500 characters; FLUX.1 [dev] takes 1000


def stack_columns(document: dict) -> dict:
    """The old table kept the style document's parts in columns of their own."""
    return {part: Jsonb(value) for part, value in document.items()}


# Rows per source table (jsonb values wrapped in Jsonb; text[] values as lists).
SOURCE_ROWS = {
    "auth.users": [
        {
            "id": ALICE,
            "email": "alice@old.example",
            "encrypted_password": gotrue_hash(PASSWORDS[ALICE]),
            "email_confirmed_at": when(1, 2),
            "raw_user_meta_data": Jsonb({"full_name": "Alice Old"}),
            "raw_app_meta_data": Jsonb({"provider": "email", "providers": ["email"]}),
            "created_at": when(1, 2),
            "last_sign_in_at": when(6),
        },
        {
            "id": BOB,
            "email": "bob@old.example",
            "encrypted_password": gotrue_hash(PASSWORDS[BOB]),
            "created_at": when(1, 3),
        },
        {  # signed up with Google: no password
            "id": CAROL,
            "email": "carol@old.example",
            "encrypted_password": "",
            "raw_user_meta_data": Jsonb({"name": "Carol G", "avatar_url": "https://lh3.example/c.png"}),
            "raw_app_meta_data": Jsonb({"provider": "google", "providers": ["google"]}),
            "created_at": when(2),
            "last_sign_in_at": when(5),
        },
        {  # banned, and without a profile (the old sign-up trigger failed for some)
            "id": DAVE,
            "email": "dave@old.example",
            "encrypted_password": gotrue_hash("dave-pass"),
            "banned_until": datetime(2999, 1, 1, tzinfo=UTC),
            "created_at": when(2),
        },
        {  # a hash bcrypt cannot verify
            "id": ERIN,
            "email": "erin@old.example",
            "encrypted_password": "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
            "created_at": when(3),
        },
        # Bad: Alice's address in other letters (Supabase's unique index is case-sensitive),
        # deleted, phone-only, a negative balance (below).
        {
            "id": ALICE_AGAIN,
            "email": "Alice@Old.example",
            "encrypted_password": gotrue_hash("x"),
            "created_at": when(4),
        },
        {"id": GONE, "email": "gone@old.example", "deleted_at": when(5), "created_at": when(1)},
        {
            "id": PHONE_ONLY,
            "phone": "+15550100",
            "raw_app_meta_data": Jsonb({"provider": "phone"}),
            "created_at": when(1),
        },
        {"id": IN_DEBT, "email": "debt@old.example", "encrypted_password": gotrue_hash("x"), "created_at": when(1)},
    ],
    "public.users": [
        {
            "id": ALICE,
            "email": "alice@old.example",
            "full_name": "Alice A.",
            "avatar_url": "https://cdn.old.example/alice.png",
            "credits_balance": 450,
            "current_plan": "pro",
            "metadata": Jsonb({"theme": "dark"}),
            "created_at": when(1, 2),
        },
        {"id": BOB, "email": "bob@old.example", "full_name": "Bob", "avatar_url": "", "credits_balance": 0},
        {"id": CAROL, "email": "carol@old.example", "credits_balance": 100, "current_plan": "basic"},
        {"id": ERIN, "email": "erin@old.example", "full_name": "Erin", "credits_balance": 30},
        {"id": IN_DEBT, "email": "debt@old.example", "credits_balance": -5},
        {"id": NO_IDENTITY, "email": "ghost@old.example", "credits_balance": 10},
    ],
    # The old ledger: Alice's sums to her balance (450); Bob's does not (75, balance 0).
    "public.credit_transactions": [
        {"user_id": user, "type": kind, "amount": amount}
        for user, kind, amount in [
            (ALICE, "bonus", 1000),
            (ALICE, "usage", -600),
            (ALICE, "purchase", 50),
            (BOB, "bonus", 100),
            (BOB, "usage", -25),
        ]
    ],
    "public.projects": [
        {"id": P_NOIR, "user_id": ALICE, "name": "Noir Shorts", "visibility": "public", "created_at": when(2, 1)},
        {"id": P_NOIR_AGAIN, "user_id": ALICE, "name": "noir shorts", "created_at": when(2, 2)},  # the same name
        {"id": P_BOB, "user_id": BOB, "name": "Bob's things", "tags": ["old"], "created_at": when(2, 3)},
        {"id": P_IN_DEBT, "user_id": IN_DEBT, "name": "Debts", "created_at": when(2, 4)},  # its owner is rejected
        {"id": P_TEAM, "user_id": BOB, "name": "Team work", "visibility": "team", "created_at": when(2, 5)},
    ],
    # The fork is older than its parent, so listed first: the import must wait for the parent.
    "public.style_stacks": [
        {"id": S_FORK, "user_id": BOB, "name": "My noir", "parent_stack_id": S_NOIR, "created_at": when(2, 1)}
        | stack_columns(NOIR_STACK),
        {
            "id": S_NOIR,
            "user_id": ALICE,
            "name": "Film noir",
            "tags": ["Noir", "Shadows", "noir"],
            "category": "genre",
            "is_public": True,
            "created_at": when(3, 1),
        }
        | stack_columns(NOIR_STACK),
        {"id": S_BAD, "user_id": ALICE, "name": "Giant", "created_at": when(3, 2)} | stack_columns(BAD_STACK),
    ],
    "public.generations": [
        {
            "id": G_DONE,
            "user_id": ALICE,
            "project_id": P_NOIR,
            "style_stack_id": S_NOIR,
            "model_id": "fal-ai/flux/dev",
            "status": "completed",
            "prompt": "a detective in the rain",
            "outputs": Jsonb([{"url": OUTPUT_URL, "type": "image/png", "size": 123456, "width": 1024, "height": 1024}]),
            "credits_used": 25,
            "is_favorite": True,
            "processing_time_ms": 1200,
            "created_at": when(4, 1),
        },
        {
            "id": G_PENDING,
            "user_id": ALICE,
            "model_id": "fal-ai/veo3",
            "status": "pending",
            "prompt": "the same, moving",
            "credits_used": 500,
            "parent_generation_id": G_DONE,
            "created_at": when(4, 2),
        },
        {
            "id": G_UNKNOWN_MODEL,
            "user_id": ALICE,
            "model_id": "fal-ai/sdxl-legacy",
            "prompt": "old",
            "created_at": when(4, 3),
        },
        {
            "id": G_BAD_PROJECT,
            "user_id": ALICE,
            "project_id": P_NOIR_AGAIN,
            "model_id": "fal-ai/flux/dev",
            "status": "completed",
            "prompt": "in a rejected project",
            "created_at": when(4, 4),
        },
        {
            "id": G_NO_URL,
            "user_id": BOB,
            "project_id": P_BOB,
            "model_id": "fal-ai/flux/dev",
            "status": "completed",
            "prompt": "kept by path only",
            "outputs": Jsonb([{"path": "outputs/x.png", "type": "image"}]),
            "created_at": when(4, 5),
        },
        {"id": G_LONG, "user_id": BOB, "model_id": "fal-ai/flux/dev", "prompt": LONG_PROMPT, "created_at": when(4, 6)},
    ],
}
REJECTED = {
    ("auth.users", ALICE_AGAIN): "already exists",
    ("auth.users", GONE): "deleted in Supabase",
    ("auth.users", PHONE_ONLY): "no email address",
    ("auth.users", IN_DEBT): "below zero",
    ("public.users", NO_IDENTITY): "without an identity",
    ("projects", P_NOIR_AGAIN): "already have a project with this name",
    ("projects", P_IN_DEBT): f"owner {IN_DEBT} was not imported",
    ("projects", P_TEAM): "visibility",
    ("style_stacks", S_BAD): "persistent_elements[0].weight",
    ("generations", G_UNKNOWN_MODEL): "not in Velro's catalog",
    ("generations", G_BAD_PROJECT): f"project {P_NOIR_AGAIN} was not imported",
    ("generations", G_NO_URL): "no http(s) URL",
    ("generations", G_LONG): "takes at most 1000",
}
IMPORTED_PEOPLE = {ALICE, BOB, CAROL, DAVE, ERIN}


def insert_sql(uuid_default: str = "gen_random_uuid()") -> list[tuple[str, tuple]]:
    """The statements that build the source: its schema, then every row."""
    statements = [(SCHEMA.replace("UUID_DEFAULT", uuid_default), ())]
    # A fork may be inserted before its parent (the old SQL had no such order).
    statements.append(("ALTER TABLE public.style_stacks DROP CONSTRAINT style_stacks_parent_stack_id_fkey", ()))
    for table, rows in SOURCE_ROWS.items():
        for row in rows:
            columns = ", ".join(row)
            placeholders = ", ".join(["%s"] * len(row))
            statements.append((f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", tuple(row.values())))
    return statements


def server_admin() -> dict:
    params = connection.get_connection_params()
    return {k: params[k] for k in ("host", "port", "user", "password") if params.get(k)}


@pytest.fixture
def supabase(db):
    """A Supabase-shaped source database on the test server: (name, URL, psycopg params)."""
    name = f"velro_supabase_src_{uuid.uuid4().hex[:8]}"
    admin = server_admin()
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    try:
        with psycopg.connect(**admin, dbname=name) as conn:
            for statement, params in insert_sql():
                conn.execute(statement, params or None)
        yield name, database_url(name), admin | {"dbname": name}
    finally:
        with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


@pytest.fixture(autouse=True)
def _hashers(settings):
    # The suite's fast hasher first (what sign-in upgrades to), then GoTrue's.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "accounts.hashers.GoTrueBcryptPasswordHasher",
    ]


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_supabase", *map(str, args), stdout=out)
    return out.getvalue()


def scratch_databases() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'velro\\_supabase\\_import\\_%'")
        return [row[0] for row in cursor.fetchall()]


def login(api, email, password):
    return api.post("/api/v1/auth/login", {"email": email, "password": password}, format="json")


def assert_imported(api):
    """What every way of importing the source must leave behind."""
    assert set(User.objects.values_list("pk", flat=True)) == IMPORTED_PEOPLE

    # People sign in with their old password; the GoTrue hash is replaced at once.
    alice = User.objects.get(pk=ALICE)
    assert alice.password.startswith("bcrypt$$2a$04$")
    response = login(api, "alice@old.example", PASSWORDS[ALICE])
    assert response.status_code == 200, response.content
    alice.refresh_from_db()
    assert alice.password.startswith("md5$") and alice.check_password(PASSWORDS[ALICE])
    assert login(api, "bob@old.example", "not-bobs-password").status_code in (400, 401)
    assert login(api, "bob@old.example", PASSWORDS[BOB]).status_code == 200

    # Identities keep their ids, timestamps and metadata.
    assert (alice.created_at, alice.email_confirmed_at) == (when(1, 2), when(1, 2))
    assert alice.raw_user_meta_data == {"full_name": "Alice Old"}
    assert alice.raw_app_meta_data == {"provider": "email", "providers": ["email"]}
    carol, dave, erin = (User.objects.get(pk=pk) for pk in (CAROL, DAVE, ERIN))
    assert carol.last_login == when(5) and not carol.has_usable_password()  # OAuth: no password
    assert not erin.has_usable_password()  # argon2: nothing here verifies it
    assert not dave.is_active  # banned until 2999
    assert not alice.is_staff and not alice.is_superuser

    # Profiles take the source's fields over the trigger's.
    profile = Profile.objects.get(pk=ALICE)
    assert (profile.full_name, profile.avatar_url, profile.current_plan, profile.metadata, profile.created_at) == (
        "Alice A.",
        "https://cdn.old.example/alice.png",
        "pro",
        {"theme": "dark"},
        when(1, 2),
    )
    assert Profile.objects.get(pk=CAROL).full_name == "Carol G"  # none in the source: the trigger's, from metadata

    # Balances equal the source's (no profile: 0), through one adjustment each, and the books balance.
    balances = dict(Profile.objects.values_list("pk", "credits_balance"))
    assert balances == {ALICE: 450, BOB: 0, CAROL: 100, DAVE: 0, ERIN: 30}
    ledger = {
        pk: list(CreditTransaction.objects.filter(user_id=pk).order_by("created_at").values_list("type", "amount"))
        for pk in IMPORTED_PEOPLE
    }
    assert ledger[ALICE] == [("signup_bonus", 100), ("adjustment", 350)]
    assert ledger[BOB] == [("signup_bonus", 100), ("adjustment", -100)]
    assert ledger[CAROL] == [("signup_bonus", 100)]  # the bonus is already her balance
    assert ledger[DAVE] == [("signup_bonus", 100), ("adjustment", -100)]
    note = CreditTransaction.objects.get(user_id=ALICE, type="adjustment").description
    assert "balance 450" in note and "3 row(s), summing to 450" in note
    assert credits_invariant_violations() == []
    # dbhealth's checks of the rows: the books, identities and profiles, references, files.
    report = health_report(only=["credits", "user sync", "foreign keys", "media files"])
    assert [(check.name, check.level) for check in report.checks if check.level != Level.OK] == []

    # Projects, stacks, generations: mapped, counted by Velro's triggers, dates kept.
    noir = Project.objects.get(pk=P_NOIR)
    assert (noir.user_id, noir.name, noir.visibility, noir.created_at) == (ALICE, "Noir Shorts", "public", when(2, 1))
    assert noir.generation_count == 1
    assert set(Project.objects.values_list("pk", flat=True)) == {P_NOIR, P_BOB}
    stack = StyleStack.objects.get(pk=S_NOIR)
    assert stack.tags == ["noir", "shadows"] and stack.visibility == "public" and stack.created_at == when(3, 1)
    assert stack.style["schema_version"] == 2
    assert stack.style["prompt_blocks"]["motion"]["text"] == "slow push-in"
    assert stack.style["model_adaptations"]["fal-ai/veo3"]["prompt_blocks"]["motion"]["text"] == (
        "slow dolly through rain"
    )
    assert (stack.fork_count, stack.usage_count) == (1, 1)
    fork = StyleStack.objects.get(pk=S_FORK)
    assert (fork.parent_id, fork.created_from, fork.user_id) == (S_NOIR, "fork", BOB)
    assert not StyleStack.objects.filter(pk=S_BAD).exists()
    done = Generation.objects.get(pk=G_DONE)
    assert (done.status, done.credits_charged, done.is_favorite, done.created_at) == ("completed", 25, True, when(4, 1))
    assert done.outputs == [
        {"url": OUTPUT_URL, "mime_type": "image/png", "size": 123456, "width": 1024, "height": 1024}
    ]
    pending = Generation.objects.get(pk=G_PENDING)
    assert pending.status == "failed" and "was pending" in pending.error_message and pending.parent_id == G_DONE
    assert not Generation.objects.filter(status__in=["pending", "processing"]).exists()  # nothing for the worker
    assert set(Generation.objects.values_list("pk", flat=True)) == {G_DONE, G_PENDING}


def read_report(path) -> dict:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {(line["table"], uuid.UUID(line["id"])): line["reason"] for line in lines}


def test_import_by_url_keeps_people_passwords_and_balances(supabase, api, tmp_path):
    _, url, _ = supabase
    report = tmp_path / "rejected.jsonl"
    out = run(url, "--report", report)

    assert_imported(api)
    rejected = read_report(report)
    assert set(rejected) == set(REJECTED)
    for key, phrase in REJECTED.items():
        assert phrase in rejected[key], (key, rejected[key])
    # The summary: per table, the ledger's fate, the notes, every rejection with its reason.
    assert "users                  5         0         5" in out
    assert "projects               2         0         3" in out
    assert "style_stacks           2         0         1" in out
    assert "generations            2         0         4" in out
    assert "credit_transactions: 5 old ledger row(s) of 2 person(s) not copied; 4 adjustment(s)" in out
    assert "1 generation(s) still pending or processing were imported as failed" in out
    assert "1 person(s) had a password hash that is not bcrypt" in out
    assert "1 person(s) had an old ledger that disagreed with their balance" in out  # Bob's
    assert "projects.tags" in out and "style_stacks.royalty_rate" in out and "generations.processing_time_ms" in out
    assert f"generations {G_UNKNOWN_MODEL} ({ALICE}): its model 'fal-ai/sdxl-legacy' is not in Velro's catalog" in out
    assert "Imported 11 row(s) (0 already present, 13 rejected)" in out


def test_a_second_run_changes_nothing_and_says_so(supabase, api, tmp_path):
    _, url, _ = supabase
    run(url)
    counts = [model.objects.count() for model in (User, CreditTransaction, Project, StyleStack, Generation)]
    balances = dict(Profile.objects.values_list("pk", "credits_balance"))

    out = run(url, "--report", tmp_path / "again.jsonl")
    assert [model.objects.count() for model in (User, CreditTransaction, Project, StyleStack, Generation)] == counts
    assert dict(Profile.objects.values_list("pk", "credits_balance")) == balances
    assert "users                  0         5         5" in out
    assert "Nothing to import: nothing is new (11 already present, 13 rejected)" in out
    assert set(read_report(tmp_path / "again.jsonl")) == set(REJECTED)  # still reported, still not imported
    assert_imported(api)


def test_a_fixed_row_is_imported_by_the_next_run(supabase):
    _, url, params = supabase
    run(url)
    with psycopg.connect(**params) as conn:
        conn.execute("UPDATE public.users SET credits_balance = 7 WHERE id = %s", [IN_DEBT])
    out = run(url)
    assert "users                  1         5         4" in out
    assert Profile.objects.get(pk=IN_DEBT).credits_balance == 7
    assert Project.objects.filter(pk=P_IN_DEBT, user_id=IN_DEBT).exists()  # its project follows it in


def test_dry_run_writes_nothing(supabase):
    _, url, _ = supabase
    before = (User.objects.count(), CreditTransaction.objects.count())
    out = run(url, "--dry-run")
    assert "Dry run: 11 row(s) would be imported (0 already present, 13 rejected); nothing was written." in out
    assert (User.objects.count(), CreditTransaction.objects.count()) == before == (0, 0)


def pg_dump(params: dict, *args) -> None:
    major, _ = server_major()
    binary = find_binary("pg_dump", major)
    env = pg_env({k: v for k, v in libpq_params().items() if k != "dbname"}, params["dbname"])
    result = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_import_from_a_pg_dump_file(supabase, api, tmp_path):
    _, _, params = supabase
    dump = tmp_path / "supabase.dump"
    pg_dump(params, "--format=custom", f"--file={dump}")
    out = run(dump)
    assert "Restoring supabase.dump into the scratch database velro_supabase_import_" in out
    assert_imported(api)
    assert scratch_databases() == []  # dropped afterwards
    assert "Nothing to import" in run(dump)


def test_import_from_plain_sql_with_supabase_only_statements(db, api, tmp_path):
    """A plain SQL dump as Supabase's server writes it: uuid-ossp defaults, owners and
    grants for Supabase's own roles, extensions this server lacks. What cannot run here is
    skipped and counted; the tables still restore (uuid_generate_v4 is stood in for)."""
    lines = [
        "CREATE SCHEMA IF NOT EXISTS extensions;",
        'CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA extensions;',
        "CREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA graphql;",
    ]
    with psycopg.connect(**server_admin(), dbname="postgres") as conn:
        cursor = psycopg.ClientCursor(conn)  # quotes the values into the statements
        for statement, params in insert_sql(uuid_default="extensions.uuid_generate_v4()"):
            lines.append(cursor.mogrify(statement, params or None) + ";")
    lines += ["ALTER TABLE public.projects OWNER TO supabase_admin;", "GRANT ALL ON public.projects TO dashboard_user;"]
    dump = tmp_path / "supabase.sql"
    dump.write_text("\n".join(lines) + "\n")

    out = run(dump)
    assert "statement(s) of the dump could not run here" in out
    assert_imported(api)
    assert scratch_databases() == []


def test_pg_dumpall_output_is_refused_before_anything_runs(db, tmp_path):
    dump = tmp_path / "db_cluster.backup"
    dump.write_text("CREATE ROLE supabase_admin;\n\\connect postgres\nCREATE SCHEMA auth;\n")
    with pytest.raises(CommandError, match="pg_dumpall"):
        run(dump)
    assert scratch_databases() == []
    with pytest.raises(CommandError, match="neither a file nor a connection URL"):
        run(tmp_path / "missing.dump")


def test_a_database_without_auth_users_is_refused(db):
    with pytest.raises(CommandError, match="no auth.users table"):
        run(database_url("postgres"))  # the server's maintenance database: no Supabase in it


def test_the_restore_list_keeps_only_the_rows_read():
    listing = "\n".join(
        [
            ";",
            "; Archive created at 2025-01-01",
            "4001; 2615 16400 SCHEMA - auth supabase_admin",
            "4002; 1259 16410 TABLE auth users supabase_auth_admin",
            "4003; 0 16410 TABLE DATA auth users supabase_auth_admin",
            "4004; 0 16420 TABLE DATA auth audit_log_entries supabase_auth_admin",
            "4005; 0 16430 TABLE DATA storage objects supabase_storage_admin",
            "4006; 0 16440 TABLE DATA public generations postgres",
            "4007; 3466 16450 EVENT TRIGGER - pgrst_ddl_watch supabase_admin",
            "4008; 6104 16460 PUBLICATION - supabase_realtime postgres",
            "4009; 0 16470 MATERIALIZED VIEW DATA public stats postgres",
        ]
    )
    kept = [line for line in restore_list(listing).splitlines() if line and not line.startswith(";")]
    assert [line.split(" ", 1)[0] for line in kept] == ["4001;", "4002;", "4003;", "4006;"]
