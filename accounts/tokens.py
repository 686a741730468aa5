"""JWTs whose claims match Supabase's: ``sub`` (the user id), ``role``, ``email``,
``aud`` and ``exp``. The same claims feed ``request.jwt.claims`` in the database."""

from rest_framework_simplejwt import tokens

ROLE_CLAIM_VALUE = "authenticated"


def user_can_authenticate(user) -> bool:
    """Inactive identities cannot sign in, and their existing tokens stop working."""
    return user is not None and user.is_active


class _SupabaseClaims:
    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token["role"] = ROLE_CLAIM_VALUE
        token["email"] = user.email
        return token


class AccessToken(_SupabaseClaims, tokens.AccessToken):
    def verify(self):
        super().verify()
        # Tokens are signed by us, but refuse any role we never issue all the same.
        if self.payload.get("role") != ROLE_CLAIM_VALUE:
            raise tokens.TokenError("Token has an unexpected role.")


class RefreshToken(_SupabaseClaims, tokens.RefreshToken):
    access_token_class = AccessToken
    # Claims copied onto the access token minted from this refresh token.
    no_copy_claims = tokens.RefreshToken.no_copy_claims
