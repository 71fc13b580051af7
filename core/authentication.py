"""API token authentication that loads the user's role profile in the same query."""

from functools import cache

from django.db import connection
from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from core import sql
from core.models import User

PROFILES = ("consumer", "merchant")  # the reverse one-to-one role profiles of a user


@cache
def _token_sql(token_model, vendor: str) -> str:
    profiles = [User._meta.get_field(name).related_model for name in PROFILES]
    selected = ", ".join(
        [sql.columns(token_model, "t"), sql.columns(User, "u")]
        + [sql.columns(model, f"p{i}") for i, model in enumerate(profiles)]
    )
    user_pk = "u." + sql.quote(User._meta.pk.column)
    joins = " ".join(
        f"LEFT JOIN {sql.table(model)} p{i} ON p{i}.{sql.quote(model._meta.get_field('user').column)} = {user_pk}"
        for i, model in enumerate(profiles)
    )
    user_id = sql.quote(token_model._meta.get_field("user").column)
    key = sql.quote(token_model._meta.pk.column)
    return (
        f"SELECT {selected} FROM {sql.table(token_model)} t JOIN {sql.table(User)} u ON {user_pk} = t.{user_id} "
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
        found = sql.fetch(_token_sql(model, connection.vendor), [key])
        if not found:
            raise AuthenticationFailed()
        row = found[0]
        token = sql.build(model, row)
        start = sql.width(model)
        user = sql.build(User, row, start)
        start += sql.width(User)
        sql.set_cached(token, "user", user)
        token_user = model._meta.get_field("user")
        if token_user.one_to_one:
            token_user.remote_field.set_cached_value(user, token)  # user.auth_token, as select_related sets it
        for name in PROFILES:
            profile_model = User._meta.get_field(name).related_model
            profile = sql.build(profile_model, row, start)
            start += sql.width(profile_model)
            sql.set_cached(user, name, profile)
            if profile is not None:
                sql.set_cached(profile, "user", user)
        if not user.is_active:
            raise AuthenticationFailed()
        return user, token
