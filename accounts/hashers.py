"""Passwords carried over from Supabase Auth (GoTrue), which stores bcrypt hashes
(``$2a$10$…``). ``import_supabase`` (issue 16) keeps them as ``bcrypt$<hash>``; this
hasher verifies them, and Django re-hashes the password with the first of
PASSWORD_HASHERS at the next successful sign-in (``must_update``), so the old hashes
disappear as people come back.

Django's own BCryptPasswordHasher, but with GoTrue's limit made explicit: bcrypt reads at
most 72 bytes, GoTrue refuses longer passwords outright, and the bcrypt library (5.x)
raises on them. A longer password is simply wrong here, never an error.
"""

from django.contrib.auth.hashers import BCryptPasswordHasher

BCRYPT_MAX_BYTES = 72


class GoTrueBcryptPasswordHasher(BCryptPasswordHasher):
    algorithm = "bcrypt"

    def verify(self, password, encoded):
        if password is None or len(password.encode()) > BCRYPT_MAX_BYTES:
            return False
        return super().verify(password, encoded)
