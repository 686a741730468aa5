"""The checks of the database health report, in the order the report shows them.

Each check takes a cursor of the owner connection and returns an :class:`Outcome`. They
read the catalog (pg_catalog) and count rows; none writes. The SQL lives here rather than
in a migration because it is the report itself: it inspects what the migrations built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from accounts.models import User
from credits.models import CreditTransaction
from credits.selectors import credits_invariant_violations
from generations.media_files import dangling_files
from generations.models import Generation
from generations.selectors import generation_stats_drift
from health.backups import last_verified_at
from health.base import Level, Outcome
from health.models import BackupRun
from projects.models import Project
from stylestacks.models import StylePreset, StyleStack

# Lists of offenders are cut at this many rows; the summary still gives the total.
MAX_ROWS = 50

# The roles PostgREST-style clients reach the database as (README: security model).
API_ROLES = ("anon", "authenticated")

SYNC_TRIGGERS = ("on_auth_user_created", "on_auth_user_updated")

# Columns only the server writes. INSERT of such a column is tolerated only where a
# BEFORE INSERT trigger, named here, overwrites what an API role sent (style stacks:
# ``server_columns`` resets the counters, the version and the flags); UPDATE never is.
SERVER_OWNED_COLUMNS: list[tuple[str, tuple[str, ...], str | None]] = [
    ("users", ("credits_balance", "current_plan", "storage_bytes"), None),
    ("generations", ("status", "credits_charged", "outputs", "provider_request_id", "storage_bytes"), None),
    ("style_stacks", ("usage_count", "fork_count", "version", "is_featured"), "server_columns"),
]
# Append-only, written by public.credits_apply() alone: no API role may write any column.
SERVER_OWNED_TABLES = ("credit_transactions",)

# How a leaked-password validator announces itself in AUTH_PASSWORD_VALIDATORS (or the
# setting PASSWORD_BREACH_CHECK = True, for a check done elsewhere).
BREACH_VALIDATOR_MARKERS = ("breach", "pwned")


def _ident(*parts: str) -> str:
    """A schema-qualified identifier, always quoted (as quote_ident would when needed)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _label(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def _rows(cursor, statement: str, params=None) -> list[tuple]:
    cursor.execute(statement, params)
    return cursor.fetchall()


def _capped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows[:MAX_ROWS]


# --- counts --------------------------------------------------------------------------


def check_counts(cursor) -> Outcome:
    by_status = dict(Generation.objects.order_by().values_list("status").annotate(n=Count("pk")))
    statuses = list(Generation.Status.values) + sorted(set(by_status) - set(Generation.Status.values))
    week_ago = timezone.now() - timedelta(days=7)
    rows = [
        ("users", User.objects.count()),
        ("registrations in the last 7 days", User.objects.filter(created_at__gte=week_ago).count()),
        ("projects", Project.objects.count()),
        *((f"generations: {status}", by_status.get(status, 0)) for status in statuses),
        ("style stacks", StyleStack.objects.count()),
        ("presets", StylePreset.objects.count()),
        ("ledger rows", CreditTransaction.objects.count()),
    ]
    details = [{"what": what, "count": count} for what, count in rows]
    total = sum(by_status.values())
    return Outcome(Level.OK, f"{rows[0][1]} users, {rows[2][1]} projects, {total} generations", details)


# --- foreign keys --------------------------------------------------------------------

_FOREIGN_KEYS = """
SELECT con.conname, con.convalidated, cn.nspname, cc.relname, pn.nspname, pc.relname,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i),
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.i)
FROM pg_constraint con
JOIN pg_class cc ON cc.oid = con.conrelid
JOIN pg_namespace cn ON cn.oid = cc.relnamespace
JOIN pg_class pc ON pc.oid = con.confrelid
JOIN pg_namespace pn ON pn.oid = pc.relnamespace
-- conparentid: a partition's copy of its parent's constraint is checked through the parent.
WHERE con.contype = 'f' AND cn.nspname IN ('public', 'auth') AND con.conparentid = 0
ORDER BY pn.nspname, pc.relname, cc.relname, con.conname
"""


def orphans_query(
    child: tuple[str, str], parent: tuple[str, str], columns: list[str], parent_columns: list[str]
) -> str:
    """Count the child rows whose FK columns are all set but match no parent row (MATCH
    SIMPLE: a row with a NULL in the key references nothing). Only a disabled trigger
    (session_replication_role = replica) or a NOT VALID constraint lets one exist."""
    present = " AND ".join(f"c.{_ident(column)} IS NOT NULL" for column in columns)
    matches = " AND ".join(
        f"p.{_ident(parent_column)} = c.{_ident(column)}"
        for column, parent_column in zip(columns, parent_columns, strict=True)
    )
    # Anti-join on the parent's key: the referenced columns always have a unique index.
    return (
        f"SELECT count(*) FROM {_ident(*child)} AS c WHERE {present} "
        f"AND NOT EXISTS (SELECT 1 FROM {_ident(*parent)} AS p WHERE {matches})"
    )


def check_foreign_keys(cursor) -> Outcome:
    details = []
    for name, validated, child_schema, child, parent_schema, parent, columns, parent_columns in _rows(
        cursor, _FOREIGN_KEYS
    ):
        # Counted for NOT VALID constraints too: they never checked the rows that were
        # there when they were added.
        cursor.execute(orphans_query((child_schema, child), (parent_schema, parent), columns, parent_columns))
        (orphans,) = cursor.fetchone()
        details.append(
            {
                "relationship": f"{_label(parent_schema, parent)} → {_label(child_schema, child)}",
                "columns": ", ".join(columns),
                "constraint": name,
                "validated": validated,
                "orphans": orphans,
            }
        )
    orphaned = [row for row in details if row["orphans"]]
    not_valid = [row for row in details if not row["validated"]]
    if orphaned:
        level = Level.ERROR
        summary = "orphan rows in " + "; ".join(f"{row['relationship']} ({row['orphans']})" for row in orphaned)
    elif not_valid:
        level = Level.WARN
        summary = "NOT VALID: " + ", ".join(f"{row['constraint']} ({row['relationship']})" for row in not_valid)
    else:
        level, summary = Level.OK, f"{len(details)} foreign keys, all validated, no orphan rows"
    if orphaned and not_valid:
        summary += "; NOT VALID: " + ", ".join(row["constraint"] for row in not_valid)
    return Outcome(level, summary, details)


# --- user sync -----------------------------------------------------------------------

_IDENTITIES_WITHOUT_PROFILE = """
SELECT u.id::text, u.email, count(*) OVER () FROM auth.users AS u
WHERE NOT EXISTS (SELECT 1 FROM public.users AS p WHERE p.id = u.id)
ORDER BY u.created_at, u.id LIMIT %s
"""
_PROFILES_WITHOUT_IDENTITY = """
SELECT p.id::text, p.email, count(*) OVER () FROM public.users AS p
WHERE NOT EXISTS (SELECT 1 FROM auth.users AS u WHERE u.id = p.id)
ORDER BY p.created_at, p.id LIMIT %s
"""
_SYNC_TRIGGERS = """
SELECT t.tgname, t.tgenabled, t.tgfoid::regproc::text FROM pg_trigger AS t
WHERE t.tgrelid = 'auth.users'::regclass AND NOT t.tgisinternal AND t.tgname = ANY(%s)
"""
# pg_trigger.tgenabled: O = fires (origin/local), A = always, R = only in replica
# sessions (never for the app, so as good as off), D = disabled.
_TRIGGER_STATE = {"O": "enabled", "A": "enabled (always)", "R": "replica only", "D": "disabled"}


def check_user_sync(cursor) -> Outcome:
    details, problems = [], []
    for problem, statement in (
        ("identity without a profile", _IDENTITIES_WITHOUT_PROFILE),
        ("profile without an identity", _PROFILES_WITHOUT_IDENTITY),
    ):
        rows = _rows(cursor, statement, [MAX_ROWS])
        if rows:
            problems.append(f"{rows[0][2]} {problem}{'s' if rows[0][2] > 1 else ''}")
        details += [{"item": problem, "name": email, "detail": f"id {pk}"} for pk, email, _ in rows]

    rows = _rows(cursor, _SYNC_TRIGGERS, [list(SYNC_TRIGGERS)])
    triggers = {name: (state, function) for name, state, function in rows}
    for name in SYNC_TRIGGERS:
        state, function = triggers.get(name, (None, None))
        label = _TRIGGER_STATE.get(state, "missing")
        if state not in ("O", "A"):
            problems.append(f"trigger {name} on auth.users is {label}")
        details.append({"item": "sync trigger", "name": name, "detail": f"{label}, runs {function or '-'}"})

    if problems:
        return Outcome(Level.ERROR, "; ".join(problems), details)
    return Outcome(Level.OK, "every identity has a profile and both sync triggers are enabled", details)


# --- credits -------------------------------------------------------------------------


def check_credits(cursor) -> Outcome:
    violations = credits_invariant_violations()
    if not violations:
        return Outcome(Level.OK, "every balance equals the sum of its ledger and the newest balance_after", [])
    details = [{**row, "user_id": str(row["user_id"])} for row in violations]
    emails = ", ".join(row["email"] for row in details[:5]) + (", …" if len(details) > 5 else "")
    summary = f"{len(violations)} balance(s) disagree with the ledger: {emails}"
    return Outcome(Level.ERROR, summary, _capped(details))


# People whose generation counts (generation_stats) are compared with their generations.
STATS_SAMPLE = 200


def check_generation_stats(cursor) -> Outcome:
    """The counts ``GET generations/stats`` reads, kept by triggers (generations 0015),
    against the generations themselves, for a random sample of people: any difference
    is drift, which no code path should be able to cause."""
    checked, drift = generation_stats_drift(sample=STATS_SAMPLE)
    if drift:
        details = [{**row, "user_id": str(row["user_id"])} for row in drift]
        people = sorted({row["email"] or row["user_id"] for row in details})
        summary = (
            f"the generation counts of {len(people)} of {checked} sampled people disagree with their generations: "
            + ", ".join(people[:5])
            + (", …" if len(people) > 5 else "")
        )
        return Outcome(Level.ERROR, summary, _capped(details))
    return Outcome(Level.OK, f"the generation counts of {checked} sampled people match their generations", [])


# --- row level security --------------------------------------------------------------

_API_PRIVILEGES = """
ARRAY(SELECT r FROM unnest(%s::text[]) AS r
      WHERE has_table_privilege(r, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
         OR has_any_column_privilege(r, c.oid, 'SELECT,INSERT,UPDATE,REFERENCES'))
"""
_PUBLIC_TABLES = f"""
SELECT c.relname, c.relrowsecurity, (SELECT count(*) FROM pg_policy AS p WHERE p.polrelid = c.oid),
       {_API_PRIVILEGES}
FROM pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def is_django_table(name: str) -> bool:
    """Django's own tables (sessions, admin log, content types, permissions, groups,
    migrations): RLS-less by design, safe only while no API role can touch them."""
    return name.startswith(("django_", "auth_group")) or name == "auth_permission"


def check_row_level_security(cursor) -> Outcome:
    details, errors = [], []
    for table, rls, policies, api_roles in _rows(cursor, _PUBLIC_TABLES, [list(API_ROLES)]):
        if is_django_table(table) and not rls:
            state = f"Django table, but {'/'.join(api_roles)} have privileges" if api_roles else "Django table: exempt"
            bad = bool(api_roles)
        elif not rls:
            state, bad = "RLS disabled", True
        elif not policies:
            state, bad = "RLS enabled but no policy: nobody but the owner sees a row", True
        else:
            state, bad = "ok", False
        if bad:
            errors.append(f"public.{table}: {state}")
        details.append(
            {"table": table, "rls": rls, "policies": policies, "api_privileges": ", ".join(api_roles), "state": state}
        )
    if errors:
        return Outcome(Level.ERROR, "; ".join(errors), details)
    summary = f"{len(details)} tables in public: RLS with policies, or Django's without API access"
    return Outcome(Level.OK, summary, details)


# --- indexes for the policies --------------------------------------------------------

# The columns of its own table a policy reads, from pg_depend (PostgreSQL records one
# dependency per referenced column, also inside sub-selects), and the index that serves
# each: one that leads with the column, or else a partial index whose predicate filters
# on it (e.g. ``WHERE visibility = 'public'`` serves ``visibility = 'public'``).
_POLICY_COLUMNS = """
WITH policy_columns AS (
    SELECT DISTINCT c.oid AS relid, c.relname, a.attnum, a.attname, p.polname
    FROM pg_policy AS p
    JOIN pg_class AS c ON c.oid = p.polrelid
    JOIN pg_depend AS d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
         AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid > 0
    JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
    WHERE c.relnamespace = 'public'::regnamespace
)
SELECT pc.relname, pc.attname, string_agg(pc.polname, ', ' ORDER BY pc.polname),
       coalesce(
           (SELECT min(ic.relname::text) FROM pg_index AS i JOIN pg_class AS ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = pc.relid AND i.indisvalid AND i.indkey[0] = pc.attnum),
           (SELECT min(ic.relname::text) || ' (partial)' FROM pg_index AS i
            JOIN pg_class AS ic ON ic.oid = i.indexrelid
            JOIN pg_depend AS d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                 AND d.refclassid = 'pg_class'::regclass AND d.refobjid = pc.relid AND d.refobjsubid = pc.attnum
            WHERE i.indrelid = pc.relid AND i.indisvalid AND i.indpred IS NOT NULL
              AND NOT pc.attnum = ANY (i.indkey::int2[]))
       )
FROM policy_columns AS pc
GROUP BY pc.relid, pc.relname, pc.attnum, pc.attname
ORDER BY 1, 2
"""
_TABLES_WITHOUT_INDEX = """
SELECT c.relname FROM pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
  AND NOT EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid)
ORDER BY 1
"""


def check_policy_indexes(cursor) -> Outcome:
    details = [
        {"table": table, "column": column, "policies": policies, "index": index}
        for table, column, policies, index in _rows(cursor, _POLICY_COLUMNS)
    ]
    details += [
        {"table": table, "column": None, "policies": None, "index": None}
        for (table,) in _rows(cursor, _TABLES_WITHOUT_INDEX)
    ]
    missing = [row for row in details if row["index"] is None]
    if missing:
        names = [f"{row['table']}.{row['column'] or '* (no index at all)'}" for row in missing]
        return Outcome(Level.WARN, "without an index: " + ", ".join(names), details)
    return Outcome(Level.OK, f"{len(details)} policy columns, each served by an index", details)


# --- auth.uid() once per statement ---------------------------------------------------

_POLICIES = """
SELECT schemaname, tablename, policyname, coalesce(qual, ''), coalesce(with_check, '')
FROM pg_policies WHERE schemaname IN ('public', 'auth') ORDER BY 1, 2, 3
"""
_AUTH_CALL = re.compile(r"\bauth\.(?:uid|role|jwt)\(\)")
# As PostgreSQL prints ``(select auth.uid())``: an InitPlan, evaluated once per statement.
_WRAPPED_AUTH_CALL = re.compile(r"\bselect\s+auth\.(?:uid|role|jwt)\(\)", re.IGNORECASE)


def check_policy_auth_calls(cursor) -> Outcome:
    details, policies = [], 0
    for schema, table, policy, qual, with_check in _rows(cursor, _POLICIES):
        policies += 1
        for clause, expression in (("using", qual), ("with check", with_check)):
            # A bare call is evaluated for every row the policy filters.
            if len(_AUTH_CALL.findall(expression)) > len(_WRAPPED_AUTH_CALL.findall(expression)):
                details.append(
                    {"table": _label(schema, table), "policy": policy, "clause": clause, "expression": expression}
                )
    if details:
        names = sorted({f"{row['table']}.{row['policy']}" for row in details})
        return Outcome(Level.WARN, "call auth.uid() per row, not (select auth.uid()): " + ", ".join(names), details)
    return Outcome(Level.OK, f"{policies} policies; every auth.uid() call is wrapped in (select …)", [])


# --- functions -----------------------------------------------------------------------

# Functions an extension installed are the extension's business.
_OWN_FUNCTIONS = """
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('public', 'auth', 'private') AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
"""
_LOOSE_SEARCH_PATH = f"""
SELECT n.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
       p.prosecdef, count(*) OVER ()
{_OWN_FUNCTIONS}
  AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{{}}')) AS setting
                  WHERE starts_with(setting, 'search_path='))
ORDER BY 1
"""
_FUNCTION_COUNT = f"SELECT count(*) {_OWN_FUNCTIONS}"


def check_function_search_path(cursor) -> Outcome:
    (total,) = _rows(cursor, _FUNCTION_COUNT)[0]
    rows = _rows(cursor, _LOOSE_SEARCH_PATH)
    if rows:
        details = [{"function": name, "security_definer": definer} for name, definer, _ in rows]
        return Outcome(
            Level.WARN,
            "no fixed search_path (a caller's search_path can shadow what they call): "
            + ", ".join(row["function"] for row in details),
            details,
        )
    return Outcome(Level.OK, f"{total} functions in public/auth/private, each with a fixed search_path", [])


_SECURITY_DEFINERS = f"""
SELECT n.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
       pg_get_userbyid(p.proowner),
       -- PUBLIC's grant is explicit in the ACL, or implied by a NULL ACL (the default).
       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS acl
               WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE'),
       ARRAY(SELECT r FROM unnest(%s::text[]) AS r WHERE has_function_privilege(r, p.oid, 'EXECUTE'))
{_OWN_FUNCTIONS}
  AND p.prosecdef
ORDER BY 1
"""


def check_security_definers(cursor) -> Outcome:
    """SECURITY DEFINER functions act beyond their caller's rights. None may be
    executable by PUBLIC or anon (ERROR); none in the exposed schema ``public`` by
    ``authenticated`` either (WARN, Supabase's lint 0029: a client could call it through
    /rest/v1/rpc) — those live in ``private``, behind SECURITY INVOKER wrappers."""
    details, exposed, rpc = [], [], []
    for name, owner, public, roles in _rows(cursor, _SECURITY_DEFINERS, [[*API_ROLES, "service_role"]]):
        executable_by = (["PUBLIC"] if public else []) + roles
        if public or "anon" in roles:
            exposed.append(name)
        elif name.startswith("public.") and "authenticated" in roles:
            rpc.append(name)
        details.append({"function": name, "owner": owner, "executable_by": ", ".join(executable_by)})
    if exposed:
        return Outcome(Level.ERROR, "executable by PUBLIC or anon: " + ", ".join(exposed), details)
    if rpc:
        return Outcome(
            Level.WARN, "in the exposed schema public, executable by authenticated: " + ", ".join(rpc), details
        )
    return Outcome(
        Level.OK,
        f"{len(details)} SECURITY DEFINER functions, none executable by PUBLIC or anon, none exposed in public",
        details,
    )


# --- grants --------------------------------------------------------------------------

# has_column_privilege counts table-wide grants and grants to PUBLIC too.
_COLUMN_WRITES = """
SELECT t.tbl, t.col, a.attname IS NOT NULL,
       ARRAY(SELECT r || ' ' || w FROM unnest(%s::text[]) AS r CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE']) AS w
             WHERE has_column_privilege(r, c.oid, a.attnum, w))
FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(tbl, col, i)
LEFT JOIN pg_class AS c ON c.relnamespace = 'public'::regnamespace AND c.relname = t.tbl
LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = t.col AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY t.i
"""
_TABLE_COLUMNS = """
SELECT a.attname::text FROM pg_attribute AS a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
_TABLE_WRITES = """
SELECT ARRAY(SELECT r || ' ' || w FROM unnest(%s::text[]) AS r CROSS JOIN unnest(ARRAY['DELETE', 'TRUNCATE']) AS w
             WHERE has_table_privilege(r, to_regclass(%s), w))
"""
_GUARD_TRIGGERS = """
SELECT c.relname::text, t.tgname::text FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
"""


def check_grants(cursor) -> Outcome:
    pairs = [(table, column, guard) for table, columns, guard in SERVER_OWNED_COLUMNS for column in columns]
    for table in SERVER_OWNED_TABLES:
        columns = [column for (column,) in _rows(cursor, _TABLE_COLUMNS, [_ident("public", table)])]
        pairs += [(table, column, None) for column in columns]
    guards = {table: guard for table, _, guard in pairs}
    enabled_triggers = set(_rows(cursor, _GUARD_TRIGGERS))

    rows = _rows(cursor, _COLUMN_WRITES, [list(API_ROLES), [p[0] for p in pairs], [p[1] for p in pairs]])
    details, errors, warnings = [], [], []
    for table, column, exists, writes in rows:
        guard = guards[table]
        guarded = guard is not None and (table, guard) in enabled_triggers
        # An INSERT the guard trigger overwrites cannot set the value; an UPDATE can.
        harmful = [write for write in writes if not (guarded and write.endswith(" INSERT"))]
        if not exists:
            state = "column missing"
            warnings.append(f"{table}.{column} (missing)")
        elif harmful:
            state = "writable by " + ", ".join(harmful)
            errors.append(f"{table}.{column}: {', '.join(harmful)}")
        elif writes:
            state = f"INSERT reset by trigger {guard}"
        else:
            state = "ok"
        details.append({"table": table, "column": column, "api_writes": ", ".join(writes), "state": state})
    for table in SERVER_OWNED_TABLES:
        (writes,) = _rows(cursor, _TABLE_WRITES, [list(API_ROLES), _ident("public", table)])[0]
        if writes:
            errors.append(f"{table}: {', '.join(writes)}")
        state = "writable" if writes else "ok"
        details.append({"table": table, "column": "(table)", "api_writes": ", ".join(writes), "state": state})
    if errors:
        return Outcome(Level.ERROR, "API roles can write server-owned data: " + "; ".join(errors), details)
    if warnings:
        return Outcome(Level.WARN, "cannot check: " + ", ".join(warnings), details)
    return Outcome(Level.OK, f"{len(details)} server-owned columns, none writable by anon or authenticated", details)


# --- auth settings -------------------------------------------------------------------


def _validator_names() -> list[str]:
    return [validator.get("NAME", "") for validator in settings.AUTH_PASSWORD_VALIDATORS]


def breach_check_configured() -> bool:
    """True once a leaked-password check is on: the setting PASSWORD_BREACH_CHECK, or a
    validator whose class name mentions "Breach" or "Pwned"."""
    if getattr(settings, "PASSWORD_BREACH_CHECK", False):
        return True
    classes = [name.rsplit(".", 1)[-1].lower() for name in _validator_names()]
    return any(marker in name for name in classes for marker in BREACH_VALIDATOR_MARKERS)


def check_auth_settings(cursor) -> Outcome:
    names = _validator_names()
    classes = {name.rsplit(".", 1)[-1] for name in names}
    details = [{"setting": "AUTH_PASSWORD_VALIDATORS", "value": name, "state": "on"} for name in names]
    if not names:
        details.append({"setting": "AUTH_PASSWORD_VALIDATORS", "value": "", "state": "empty"})
        return Outcome(Level.ERROR, "no password validators: any password is accepted", details)
    required = ("MinimumLengthValidator", "CommonPasswordValidator")
    problems = [f"{name} missing" for name in required if name not in classes]
    breach = breach_check_configured()
    details.append(
        {"setting": "leaked-password check", "value": "", "state": "configured" if breach else "not configured"}
    )
    if not breach:
        problems.append("leaked-password check not configured")
    if problems:
        return Outcome(Level.WARN, "; ".join(problems), details)
    return Outcome(Level.OK, f"{len(names)} password validators, leaked-password check on", details)


# --- media ----------------------------------------------------------------------------

# Newest generations with files whose files are looked up (one stat or HEAD each).
MEDIA_SAMPLE = 100


def check_media_files(cursor) -> Outcome:
    """Rows whose files are missing ("dangling") on a sample of the newest: a file must
    never go while a row points at it (orphan files are media_gc's)."""
    checked, missing = dangling_files(MEDIA_SAMPLE)
    if missing:
        rows = len({row["generation"] for row in missing})
        summary = f"{len(missing)} file(s) of {rows} of the {checked} newest generation(s) with files are missing"
        return Outcome(Level.ERROR, summary, _capped(missing))
    return Outcome(Level.OK, f"the files of the {checked} newest generation(s) with files are all stored", [])


# --- backups --------------------------------------------------------------------------

# The newest verified backup's age (README, "Backups"): daily backups leave it under 24 h;
# 26 h allows a slow run, 50 h means two missed days.
BACKUP_WARN_AGE = timedelta(hours=26)
BACKUP_ERROR_AGE = timedelta(hours=50)


def _hours(age: timedelta) -> str:
    return f"{age.total_seconds() / 3600:.1f} h"


def check_backups(cursor) -> Outcome:
    """How old the data of the newest backup proven by a restore is.

    None ever verified: OK while the database itself is younger than BACKUP_WARN_AGE (a
    fresh `make run` or test database: the first scheduled backup is not due yet), WARN
    after that, never ERROR: an existing deployment upgrading to scheduled backups must
    not fail its `dbhealth` step until the first night has passed."""
    now = timezone.now()
    verified = last_verified_at()
    newest = BackupRun.objects.order_by("-started_at", "-id").first()
    details = []
    if newest is not None:
        outcome = {True: "verified", False: "verification failed", None: "not verified"}[newest.verify_ok]
        if newest.status == BackupRun.Status.FAILED:
            outcome = "failed"
        details.append(
            {
                "backup": "newest",
                "name": newest.name,
                "started": newest.started_at.isoformat(),
                "outcome": outcome,
                "detail": (newest.error or newest.verify_detail)[:300],
            }
        )
    schedule = (
        f"scheduled daily at {settings.BACKUP_HOUR:02d}:00 UTC"
        if settings.BACKUP_SCHEDULE == "daily"
        else "no schedule (BACKUP_SCHEDULE=off)"
    )
    if verified is None:
        cursor.execute("SELECT min(applied) FROM django_migrations")
        created = cursor.fetchone()[0] or now
        if now - created <= BACKUP_WARN_AGE:
            return Outcome(
                Level.OK, f"no verified backup yet; the database is {_hours(now - created)} old ({schedule})", details
            )
        return Outcome(
            Level.WARN, f"no verified backup yet ({schedule}): run `manage.py backup` then `backup --verify`", details
        )
    age = now - verified
    details.insert(
        0, {"backup": "last verified", "name": "", "started": verified.isoformat(), "outcome": "verified", "detail": ""}
    )
    summary = f"the last verified backup is {_hours(age)} old ({schedule})"
    if age > BACKUP_ERROR_AGE:
        return Outcome(Level.ERROR, summary, details)
    if age > BACKUP_WARN_AGE:
        return Outcome(Level.WARN, summary, details)
    if newest is not None and (newest.status == BackupRun.Status.FAILED or newest.verify_ok is False):
        return Outcome(Level.WARN, f"{summary}, but the newest backup {details[-1]['outcome']}", details)
    return Outcome(Level.OK, summary, details)


CheckFunction = Callable[..., Outcome]

# The report, in order. A name is also how the command's progress line and the tests
# refer to a check.
CHECKS: list[tuple[str, CheckFunction]] = [
    ("counts", check_counts),
    ("foreign keys", check_foreign_keys),
    ("user sync", check_user_sync),
    ("credits", check_credits),
    ("generation counts", check_generation_stats),
    ("row level security", check_row_level_security),
    ("policy indexes", check_policy_indexes),
    ("policy auth.uid() calls", check_policy_auth_calls),
    ("function search_path", check_function_search_path),
    ("security definer functions", check_security_definers),
    ("grants", check_grants),
    ("auth settings", check_auth_settings),
    ("media files", check_media_files),
    ("backups", check_backups),
]
