"""API token authentication that loads the user's role profile in the same query."""

from functools import cache

from django.db import connection
from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from core import rows
from core.models import User

PROFILES = ("consumer", "merchant")  # the reverse one-to-one role profiles of a user


@cache
def _token_sql(token_model, vendor: str) -> str:
    profiles = [User._meta.get_field(name).related_model for name in PROFILES]
    selected = ", ".join(
        [rows.columns(token_model, "t"), rows.columns(User, "u")]
        + [rows.columns(model, f"p{i}") for i, model in enumerate(profiles)]
    )
    user_pk = "u." + rows.quote(User._meta.pk.column)
    joins = " ".join(
        f"LEFT JOIN {rows.table(model)} p{i} ON p{i}.{rows.quote(model._meta.get_field('user').column)} = {user_pk}"
        for i, model in enumerate(profiles)
    )
    user_id = rows.quote(token_model._meta.get_field("user").column)
    key = rows.quote(token_model._meta.pk.column)
    return (
        f"SELECT {selected} FROM {rows.table(token_model)} t JOIN {rows.table(User)} u ON {user_pk} = t.{user_id} "
        f"{joins} WHERE t.{key} = %s"
    )


class TokenAuthentication(DrfTokenAuthentication):
    """DRF's token scheme; the consumer or merchant profile comes with the user (one query, not two).

    The query is written out rather than built by ``select_related`` on every request: compiling
    it cost more than running it. The objects are the ones ``select_related("user",
    "user__consumer", "user__merchant")`` gives, relation caches included.
    """

    def authenticate_credentials(self, key):
        model = self.get_model()
        found = rows.fetch(_token_sql(model, connection.vendor), [key])
        if not found:
            raise AuthenticationFailed()
        row = found[0]
        token = rows.build(model, row)
        start = rows.width(model)
        user = rows.build(User, row, start)
        start += rows.width(User)
        rows.set_cached(token, "user", user)
        token_user = model._meta.get_field("user")
        if token_user.one_to_one:
            token_user.remote_field.set_cached_value(user, token)  # user.auth_token, as select_related sets it
        for name in PROFILES:
            profile_model = User._meta.get_field(name).related_model
            profile = rows.build(profile_model, row, start)
            start += rows.width(profile_model)
            rows.set_cached(user, name, profile)
            if profile is not None:
                rows.set_cached(profile, "user", user)
        if not user.is_active:
            raise AuthenticationFailed()
        return user, token
