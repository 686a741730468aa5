"""The rate limit of invites: ``POST style-stacks/{id}/contributors``, per user.

An invite answers the same for a registered and an unknown address, but the list of a
stack's people still shows which invites became contributors at once: the limit
(``RATE_LIMIT_INVITE_USER``, default 30/hour, ``off`` disables) caps how fast anyone can
learn that way. Over it: 429 with ``Retry-After``.

The counting is accounts/throttles.py's (DRF's sliding window in the database cache,
checked under an advisory lock, so parallel requests get exactly the limit).
"""

from __future__ import annotations

from accounts.throttles import AuthRateThrottle
from velro.rls import transaction_role

# set_config('role', 'none'): the connection's own role.
OWNER_ROLE = "none"


class InviteUserThrottle(AuthRateThrottle):
    """Counts the POSTs (invites) of each signed-in person; reading the list is free.

    Unlike the auth views, this runs inside an API request that has already switched to
    the caller's database role, and no API role may touch the cache table: the check
    steps out of the role for its few statements (velro.rls.transaction_role restores
    the caller's role and claims after). The counter is written in the request's
    transaction, so an invite that fails (a 400) is not counted.
    """

    scope = "invite_user"
    message = "Too many invitations"

    def identity(self, request, view):
        user = request.user
        if request.method != "POST" or user is None or not user.is_authenticated:
            return None
        return str(user.pk)

    def allow_request(self, request, view):
        if self.rate is None or self.get_cache_key(request, view) is None:
            return True
        with transaction_role(OWNER_ROLE, ""):
            return super().allow_request(request, view)
