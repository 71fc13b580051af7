"""API token authentication that loads the user's role profile in the same query."""

from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from core import sql

# the reverse one-to-one role profiles of a user, and a regulator's jurisdiction (regulator.RegulatorScope)
PROFILES = ("consumer", "merchant", "regulator_scope")
_RELATED = ("user", *(f"user__{name}" for name in PROFILES))


class TokenAuthentication(DrfTokenAuthentication):
    """DRF's token scheme; the consumer or merchant profile, or a regulator's jurisdiction, comes with
    the user (one query, not two).

    The query is ``core.sql``'s prepared select rather than ``select_related`` compiled on every
    request: compiling it cost more than running it. The objects are the ones
    ``select_related("user", "user__consumer", "user__merchant", "user__regulator_scope")`` gives,
    relation caches included (a missing profile too: asking for it costs no query).
    """

    def authenticate_credentials(self, key):
        token = sql.get(self.get_model(), lookup={"pk": key}, related=_RELATED)
        if token is None:
            raise AuthenticationFailed()
        user = token.user
        if not user.is_active:
            raise AuthenticationFailed()
        return user, token
