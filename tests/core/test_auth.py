import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import User
from tests.conftest import client_for
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db


def test_token_is_issued_for_right_credentials_and_authenticates(api):
    user = UserFactory(role="regulator")
    response = api.post(
        "/api/v1/auth/token",
        {"username": user.username, "password": PASSWORD, "otp": totp_code(user)},
        format="json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/regulator/ledger/verify").status_code == 200


def test_same_token_is_returned_on_each_login(api):
    user = UserFactory()
    body = {"username": user.username, "password": PASSWORD}
    assert (
        api.post("/api/v1/auth/token", body, format="json").json()
        == api.post("/api/v1/auth/token", body, format="json").json()
    )


@pytest.mark.parametrize("password", ["wrong", ""])
def test_wrong_password_is_400_invalid_credentials(api, password):
    user = UserFactory()
    response = api.post("/api/v1/auth/token", {"username": user.username, "password": password}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_credentials", "invalid"}


def test_unknown_user_is_400_invalid_credentials(api):
    response = api.post("/api/v1/auth/token", {"username": "nobody", "password": "x"}, format="json")
    assert response.json()["code"] == "invalid_credentials"


def test_inactive_user_gets_no_token(api):
    user = UserFactory(is_active=False)
    response = api.post("/api/v1/auth/token", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize(("role", "status"), [("regulator", 200), ("merchant", 403), ("consumer", 403)])
def test_regulator_endpoints_are_for_regulators_only(role, status):
    assert client_for(UserFactory(role=role)).get("/api/v1/regulator/ledger/verify").status_code == status


def test_regulator_endpoint_refuses_anonymous(api):
    assert api.get("/api/v1/regulator/ledger/verify").status_code == 401


def test_createregulator_reads_the_password_from_the_environment(monkeypatch, api):
    monkeypatch.setenv("REG_PASSWORD", "a-long-and-unusual-passphrase")
    call_command("createregulator", "inspector", "--password-from-env", "REG_PASSWORD")
    user = User.objects.get(username="inspector")
    assert user.role == User.Role.REGULATOR
    assert user.check_password("a-long-and-unusual-passphrase")


def test_createregulator_fails_with_one_line_reason_when_variable_is_missing(monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    with pytest.raises(CommandError, match="NO_SUCH_VAR is not set"):
        call_command("createregulator", "inspector", "--password-from-env", "NO_SUCH_VAR")
    assert not User.objects.filter(username="inspector").exists()


def test_createregulator_refuses_a_weak_password(monkeypatch):
    monkeypatch.setenv("REG_PASSWORD", "123")
    with pytest.raises(CommandError, match="password"):
        call_command("createregulator", "inspector", "--password-from-env", "REG_PASSWORD")


def test_createregulator_refuses_a_taken_username(monkeypatch):
    UserFactory(username="inspector")
    monkeypatch.setenv("REG_PASSWORD", "a-long-and-unusual-passphrase")
    with pytest.raises(CommandError, match="username"):
        call_command("createregulator", "inspector", "--password-from-env", "REG_PASSWORD")


def _authenticate(key: str):
    from core.authentication import TokenAuthentication

    return TokenAuthentication().authenticate_credentials(key)


@pytest.mark.parametrize(
    ("role", "present", "absent"), [("consumer", "consumer", "merchant"), ("merchant", "merchant", "consumer")]
)
def test_a_token_brings_its_user_and_role_profile_in_one_query(role, present, absent, django_assert_num_queries):
    from rest_framework.authtoken.models import Token

    from tests.cards import builders

    profile = builders.consumer() if role == "consumer" else builders.merchant()
    token = Token.objects.create(user=profile.user)
    # The select is prepared once per database session (core.sql), on its first use: a round trip
    # of its own the first time, whichever test this connection served before.
    _authenticate(Token.objects.create(user=builders.consumer().user).key)
    with django_assert_num_queries(1):
        user, auth = _authenticate(token.key)
    with django_assert_num_queries(0):
        assert (user, auth, auth.user, user.auth_token) == (profile.user, token, profile.user, token)
        assert getattr(user, present) == profile and getattr(user, present).user is user
        assert not hasattr(user, absent)  # known to be absent, without asking the database
    assert user.role == role and user.password == profile.user.password


def test_an_unknown_token_or_an_inactive_users_token_is_refused():
    from rest_framework.authtoken.models import Token
    from rest_framework.exceptions import AuthenticationFailed

    token = Token.objects.create(user=UserFactory(is_active=False))
    with pytest.raises(AuthenticationFailed):
        _authenticate(token.key)
    with pytest.raises(AuthenticationFailed):
        _authenticate("0" * 40)
