"""JWT authentication that also switches the request to the caller's database role, in
the same round trip as it reads the caller's row.

simplejwt reads the user (``SELECT … FROM auth.users WHERE id = …``), then the RLS glue
switches role and claims (``SELECT set_config(…), set_config(…)``): two round trips on
every API request. Here one statement does both, and the switch happens only for an
active identity (``CASE`` evaluates ``set_config`` for that row alone). The claims are
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

from accounts.models import User
from velro import rls
from velro.rows import fetch_instance

# The claims object is built in SQL from the row read, so the email is the current one.
_READ_AND_SWITCH = """
SELECT u.*,
       CASE WHEN u.is_active THEN
         set_config('role', 'authenticated', true) || set_config(
           'request.jwt.claims',
           (jsonb_build_object('sub', u.id::text, 'role', 'authenticated', 'email', u.email,
                               'aud', 'authenticated') || %s::jsonb)::text,
           true)
       END AS velro_switched
FROM auth.users AS u
WHERE u.id = %s
"""


class JWTAuthentication(SimpleJWTAuthentication):
    def get_user(self, validated_token):
        if not connection.in_atomic_block or settings.BENCH_DISABLE_ROLE_SWITCH:
            # Outside a transaction SET LOCAL would do nothing (and the benchmark's
            # no-RLS server must not switch): the plain lookup.
            return super().get_user(validated_token)
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        extra = {key: validated_token[key] for key in rls.TOKEN_CLAIMS if key in validated_token.payload}
        try:
            user_id = uuid.UUID(str(user_id))
        except ValueError as exc:  # checked here: a cast error would abort the transaction
            raise AuthenticationFailed("User not found", code="user_not_found") from exc
        user = fetch_instance(User, _READ_AND_SWITCH, [json.dumps(extra), user_id])
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        rls.mark_switched(str(user.pk))
        return user
