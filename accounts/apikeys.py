"""Supabase's API keys for this deployment (issue 16): ``anon`` and ``service_role``.

A Supabase client is made with a project URL and a key (``create_client(url, key)``) and
sends the key on every request (``apikey`` header). Supabase's legacy keys are HS256 JWTs
signed with the project's JWT secret whose ``role`` claim is the database role the key
stands for; Supabase's gateway accepts a request only with one of them. Here the keys are
signed with this deployment's JWT signing key (SIMPLE_JWT's, so JWT_SIGNING_KEY or
SECRET_KEY) and are stable: the same secret always gives the same keys
(``manage.py supabase_keys`` prints them), and rotating the secret rotates them.
"""

from __future__ import annotations

import jwt
from django.conf import settings

ROLES = ("anon", "service_role")
ISSUER = "velro"
ISSUED_AT = 1_767_225_600  # 2026-01-01: fixed, so a key never changes by being printed again
LIFETIME = 10 * 365 * 24 * 3600  # Supabase's keys also last ten years


def _secret() -> str:
    return settings.SIMPLE_JWT["SIGNING_KEY"]


def api_key(role: str) -> str:
    """The key for ``role`` (``anon`` or ``service_role``)."""
    if role not in ROLES:
        raise ValueError(f"No API key for role {role!r}.")
    claims = {"iss": ISSUER, "role": role, "iat": ISSUED_AT, "exp": ISSUED_AT + LIFETIME}
    return jwt.encode(claims, _secret(), algorithm="HS256")


def api_key_role(value: str | None) -> str | None:
    """The role a presented key stands for, or None when it is not one of ours (bad
    signature, expired, another role, not a JWT)."""
    if not value:
        return None
    try:
        claims = jwt.decode(value, _secret(), algorithms=["HS256"], options={"require": ["role", "exp"]})
    except jwt.InvalidTokenError:
        return None
    role = claims.get("role")
    return role if role in ROLES and claims.get("iss") == ISSUER else None
