"""Indexes on auth.users for the admin's list of people at any size.

- users_email_upper_prefix_idx: the search by an email or its beginning. Django writes
  it ``UPPER("auth"."users"."email"::text) LIKE UPPER('ab%')`` (istartswith); a b-tree
  on exactly that expression with text_pattern_ops serves a LIKE prefix whatever the
  database's collation. (pg_trgm would serve "contains" too, but the embedded server
  does not ship it.) Every changelist's search by an owner's email goes through it
  (velro.admin.owner_ids).
- users_staff_created_idx: the "staff" filter, newest first, without reading every
  identity (staff are a handful among millions).

SQL rather than Meta.indexes, as for users_created_at_idx (0011): the identity model
stays as Supabase shapes it. Built concurrently so sign-ups are not blocked."""

from django.db import migrations

EMAIL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_upper_prefix_idx "
    "ON auth.users (UPPER(email::text) text_pattern_ops);"
)
EMAIL_REVERSE = "DROP INDEX CONCURRENTLY IF EXISTS auth.users_email_upper_prefix_idx;"
STAFF = "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_staff_created_idx ON auth.users (created_at) WHERE is_staff;"
STAFF_REVERSE = "DROP INDEX CONCURRENTLY IF EXISTS auth.users_staff_created_idx;"


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("accounts", "0011_users_created_at_idx")]

    operations = [
        migrations.RunSQL(sql=EMAIL, reverse_sql=EMAIL_REVERSE),
        migrations.RunSQL(sql=STAFF, reverse_sql=STAFF_REVERSE),
    ]
