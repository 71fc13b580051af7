"""API token authentication that loads the user's role profile in the same query."""

from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


class TokenAuthentication(DrfTokenAuthentication):
    """DRF's token scheme; the consumer or merchant profile comes with the user (one query, not two)."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        try:
            token = model.objects.select_related("user", "user__consumer", "user__merchant").get(key=key)
        except model.DoesNotExist as exc:
            raise AuthenticationFailed() from exc
        if not token.user.is_active:
            raise AuthenticationFailed()
        return token.user, token
