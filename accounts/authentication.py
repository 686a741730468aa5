"""JWT authentication that also switches the request to the caller's database role, in
the same round trip as it reads the caller's row.

simplejwt reads the user (``SELECT … FROM auth.users WHERE id = …``), then the RLS glue
switches role and claims (``SELECT set_config(…), set_config(…)``): two round trips on
every API request. Here one statement does both, and the switch happens only for an
active identity in a live session (``CASE`` evaluates ``set_config`` for that row
alone): every access token names its session (``session_id``, accounts/sessions.py),
and a token whose session has ended (signed out, ended from another device or by staff,
a replayed refresh token) stops working at once, checked by the primary key of
``auth.sessions`` in the same statement (``make bench`` measures it). The claims are
the ones :func:`velro.rls.claims_for` publishes. :class:`velro.rls.RLSViewMixin` still
switches itself whenever this did not run (another authentication class, a test's
``force_authenticate``, anonymous callers), so the glue fails closed as before.
"""

import json
import uuid

from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings

from accounts.models import Session, User
from velro import rls
from velro.rows import fetch_instance

SESSION_ENDED = "This session has ended. Sign in again."

# The caller's columns, named (not u.*): the statement's columns are then known without
# reading the cursor's description on every request (velro.rows.fetch_instance), and a
# column added to auth.users later changes nothing here.
_USER_COLUMNS = tuple(field.column for field in User._meta.concrete_fields)
_READ_COLUMNS = (*_USER_COLUMNS, "velro_session_live", "velro_switched")

# The claims object is built in SQL from the row read, so the email is the current one.
_READ_AND_SWITCH = """
SELECT {columns},
       s.id IS NOT NULL AS velro_session_live,
       CASE WHEN u.is_active AND s.id IS NOT NULL THEN
         set_config('role', 'authenticated', true) || set_config(
           'request.jwt.claims',
           (jsonb_build_object('sub', u.id::text, 'role', 'authenticated', 'email', u.email,
                               'aud', 'authenticated') || %s::jsonb)::text,
           true)
       END AS velro_switched
FROM auth.users AS u
LEFT JOIN auth.sessions AS s ON s.id = %s AND s.user_id = u.id
WHERE u.id = %s
""".replace("{columns}", ", ".join(f'u."{column}"' for column in _USER_COLUMNS))


class JWTAuthentication(SimpleJWTAuthentication):
    def get_user(self, validated_token):
        try:  # checked here: a cast error would abort the transaction
            session_id = uuid.UUID(str(validated_token.payload.get("session_id")))
        except ValueError as exc:
            raise AuthenticationFailed(SESSION_ENDED, code="session_not_found") from exc
        if not connection.in_atomic_block or settings.BENCH_DISABLE_ROLE_SWITCH:
            # Outside a transaction SET LOCAL would do nothing (and the benchmark's
            # no-RLS server must not switch): the plain lookups.
            user = super().get_user(validated_token)
            if not Session.objects.filter(pk=session_id, user=user).exists():
                raise AuthenticationFailed(SESSION_ENDED, code="session_not_found")
            return user
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        extra = {key: validated_token[key] for key in rls.TOKEN_CLAIMS if key in validated_token.payload}
        try:
            user_id = uuid.UUID(str(user_id))
        except ValueError as exc:
            raise AuthenticationFailed("User not found", code="user_not_found") from exc
        user = fetch_instance(User, _READ_AND_SWITCH, [json.dumps(extra), session_id, user_id], columns=_READ_COLUMNS)
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if not user.velro_session_live:
            raise AuthenticationFailed(SESSION_ENDED, code="session_not_found")
        rls.mark_switched(str(user.pk))
        return user
