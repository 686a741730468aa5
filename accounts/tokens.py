"""Access tokens with GoTrue's claims (``AccessTokenClaims``): ``iss, sub, aud, exp, iat,
email, phone, role, app_metadata, user_metadata, aal, amr, session_id, is_anonymous``.

One token for both surfaces: ``/auth/v1`` hands it out in its Session objects and
``/api/v1`` accepts it. It is minted for a session (accounts/sessions.py adds
``session_id``, ``aal`` and ``amr``) and works while that session exists. Refresh tokens
are not JWTs: they are opaque and live in ``auth.refresh_tokens``.

They are signed with this deployment's keys (velro/jwt_keys.py): ES256 with a ``kid``
naming the key, or HS256 with the JWT secret in Supabase's legacy mode.
"""

import binascii
import json

import jwt
import jwt.utils
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import backends, tokens
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings

from velro import jwt_keys

ROLE_CLAIM_VALUE = "authenticated"


def user_can_authenticate(user) -> bool:
    """Inactive identities cannot sign in, and their existing tokens stop working."""
    return user is not None and user.is_active


def app_metadata(user) -> dict:
    """GoTrue's ``app_metadata``: the sign-in provider, and what staff or an import set."""
    return {"provider": "email", "providers": ["email"], **(user.raw_app_meta_data or {})}


def unverified_kid(token):
    """The ``kid`` a token's header names, read from the header segment alone: it only
    picks the key; ``jwt.decode`` then checks the whole token (every segment, the
    header's ``alg``, the signature) with that key. ``jwt.get_unverified_header`` decoded
    and checked every segment for this too — the payload and signature again in
    ``jwt.decode`` (~35 µs of every API request). ``TokenBackendError`` for a header
    that cannot be read."""
    if isinstance(token, str):
        token = token.encode()
    segment, dot, _rest = token.partition(b".")
    try:
        if not dot:
            raise ValueError("not a JWT")
        header = json.loads(jwt.utils.base64url_decode(segment))
        if not isinstance(header, dict):
            raise ValueError("the header is not an object")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise TokenBackendError(_("Token is invalid")) from exc
    return header.get("kid")


class TokenBackend(backends.TokenBackend):
    """simplejwt's backend over a key set. With ES256 a token names the key that signed it
    in its header (``kid``, which simplejwt does not write) and is checked with that key
    and ES256 alone: no kid, an unknown one, or another ``alg`` (``none``, HS256 signed
    with a public key) is refused. With HS256, simplejwt's own path with the JWT secret."""

    def __init__(self, keys: jwt_keys.KeySet):
        self.keys = keys
        super().__init__(
            keys.algorithm,
            keys.signing.private_key if keys.signing else api_settings.SIGNING_KEY,
            audience=api_settings.AUDIENCE,
            issuer=api_settings.ISSUER,
            leeway=api_settings.LEEWAY,
            json_encoder=api_settings.JSON_ENCODER,
        )

    def get_verifying_key(self, token):
        if self.keys.signing is None:
            return super().get_verifying_key(token)
        key = self.keys.verifying_key(unverified_kid(token))
        if key is None:
            raise TokenBackendError(_("Token is invalid"))
        return key

    def encode(self, payload: dict) -> str:
        if self.keys.signing is None:
            return super().encode(payload)
        claims = dict(payload)
        if self.audience is not None:
            claims["aud"] = self.audience
        if self.issuer is not None:
            claims["iss"] = self.issuer
        return jwt.encode(
            claims,
            self.prepared_signing_key,
            algorithm=self.algorithm,
            headers={"kid": self.keys.signing.kid},
            json_encoder=self.json_encoder,
        )


class AccessToken(tokens.AccessToken):
    def get_token_backend(self):
        # Built from the current settings each time (cheap: the keys are parsed once).
        return TokenBackend(jwt_keys.key_set())

    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token["role"] = ROLE_CLAIM_VALUE
        token["email"] = user.email
        token["phone"] = ""
        token["app_metadata"] = app_metadata(user)
        token["user_metadata"] = dict(user.raw_user_meta_data or {})
        token["is_anonymous"] = False
        return token

    def verify(self):
        super().verify()
        # Tokens are signed by us, but refuse any role we never issue all the same.
        if self.payload.get("role") != ROLE_CLAIM_VALUE:
            raise tokens.TokenError("Token has an unexpected role.")
