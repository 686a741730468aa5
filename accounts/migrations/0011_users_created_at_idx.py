"""An index on auth.users (created_at) for the admin dashboard's sign-ups per day
(health/dashboard.py): a range scan over the last 30 days instead of a read of every
identity. SQL rather than Meta.indexes on the model: the dashboard is the only reader, and
this keeps the identity model as Supabase shapes it. Built concurrently so sign-ups
are not blocked while it runs on a big table."""

from django.db import migrations

SQL = "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_created_at_idx ON auth.users (created_at);"
SQL_REVERSE = "DROP INDEX CONCURRENTLY IF EXISTS auth.users_created_at_idx;"


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("accounts", "0010_email_tokens")]

    operations = [migrations.RunSQL(sql=SQL, reverse_sql=SQL_REVERSE)]
