"""Django's PostgreSQL backend, taught about schema-qualified tables.

The identity table is ``auth.users`` (Supabase's layout), declared as
``db_table = 'auth"."users'``; the profile table is declared ``'public"."users'`` so
that a join of the two is not ambiguous. Django's introspection lists tables by their
bare names, so ``flush`` (run between transactional tests) would leave these tables out
of its TRUNCATE, which PostgreSQL then refuses because other tables reference them.
Listing the tables of both schemas schema-qualified as well fixes that; nothing else
changes.
"""
