"""Access tokens with GoTrue's claims (``AccessTokenClaims``): ``iss, sub, aud, exp, iat,
email, phone, role, app_metadata, user_metadata, aal, amr, session_id, is_anonymous``.

One token for both surfaces: ``/auth/v1`` hands it out in its Session objects and
``/api/v1`` accepts it. It is minted for a session (accounts/sessions.py adds
``session_id``, ``aal`` and ``amr``) and works while that session exists. Refresh tokens
are not JWTs: they are opaque and live in ``auth.refresh_tokens``.
"""

from rest_framework_simplejwt import tokens

ROLE_CLAIM_VALUE = "authenticated"


def user_can_authenticate(user) -> bool:
    """Inactive identities cannot sign in, and their existing tokens stop working."""
    return user is not None and user.is_active


def app_metadata(user) -> dict:
    """GoTrue's ``app_metadata``: the sign-in provider, and what staff or an import set."""
    return {"provider": "email", "providers": ["email"], **(user.raw_app_meta_data or {})}


class AccessToken(tokens.AccessToken):
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
