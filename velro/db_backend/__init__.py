"""Django's PostgreSQL backend, taught that tables in the ``auth`` schema are Django's.

The identity table is ``auth.users`` (Supabase's layout), declared as
``db_table = 'auth"."users'``. Django's introspection lists only the tables on the
search_path, so ``flush`` (used between transactional tests) would leave ``auth.users``
and its many-to-many tables out of its TRUNCATE, which PostgreSQL refuses because
public tables reference them. Listing them schema-qualified fixes that, and nothing else
changes.
"""
