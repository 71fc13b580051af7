"""Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins of one username from one
address, that username is refused from that address, even with the right password, until
AXES_COOLOFF_MINUTES have passed since the last attempt. The web login (/login/) and the API's
``POST /api/v1/auth/token`` count against the same lockout."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from config import env as config_env
from core.web import client_ip
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_throttling")]

TOKEN = "/api/v1/auth/token"
LOGIN = "/login/"
WRONG = "not-the-password"
START = "2026-03-02 10:00 +0800"


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def token_login(username: str, password: str, *, ip: str = "127.0.0.1"):
    return APIClient().post(TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=ip)


def page_login(username: str, password: str, *, ip: str = "127.0.0.1"):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)
    return response, client


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def assert_locked_out_json(response) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["code"] == "too_many_login_attempts"
    assert body["detail"]


def test_the_limits_come_from_the_environment_with_the_documented_defaults():
    assert {"AXES_FAILURE_LIMIT", "AXES_COOLOFF_MINUTES"} <= set(config_env.READ)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert timedelta(minutes=settings.AXES_COOLOFF_MINUTES) == settings.AXES_COOLOFF_TIME


def test_the_token_endpoint_refuses_the_right_password_after_too_many_wrong_ones(clock):
    user = UserFactory()
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = token_login(user.username, WRONG)
        if attempt < settings.AXES_FAILURE_LIMIT:
            assert response.status_code == 400 and response.json()["code"] == "invalid_credentials"
    assert_locked_out_json(response)  # the failure that reaches the limit already says so

    assert_locked_out_json(token_login(user.username, PASSWORD))


def test_a_token_lockout_holds_only_that_username_from_that_address(clock):
    victim, bystander = UserFactory(), UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        token_login(victim.username, WRONG)

    assert token_login(bystander.username, PASSWORD).status_code == 200
    assert token_login(victim.username, PASSWORD, ip="10.0.0.2").status_code == 200
    assert_locked_out_json(token_login(victim.username, PASSWORD))


def test_a_token_lockout_ends_after_the_cool_off(clock):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        token_login(user.username, WRONG)

    clock.shift(settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert_locked_out_json(token_login(user.username, PASSWORD))  # an attempt while locked restarts the clock
    clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
    response = token_login(user.username, PASSWORD)
    assert response.status_code == 200 and response.json()["token"]


def test_the_login_page_refuses_the_right_password_after_too_many_wrong_ones(clock):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response, _client = page_login(user.username, WRONG)
    assert response.status_code == 429

    response, client = page_login(user.username, PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)
    page = response.content.decode()
    assert "Too many failed login attempts" in page
    assert 'name="csrfmiddlewaretoken"' in page and 'name="password"' in page  # the form, to try again later


def test_a_page_lockout_holds_only_that_username_from_that_address(clock):
    victim, bystander = UserFactory(), UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page_login(victim.username, WRONG)

    response, client = page_login(bystander.username, PASSWORD)
    assert response.status_code == 302 and logged_in(client)
    response, client = page_login(victim.username, PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302 and logged_in(client)


def test_a_page_lockout_ends_after_the_cool_off(clock):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page_login(user.username, WRONG)

    clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
    response, client = page_login(user.username, PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_the_page_and_the_api_count_failures_together(clock):
    user = UserFactory()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        if attempt % 2:
            token_login(user.username, WRONG)
        else:
            page_login(user.username, WRONG)

    assert_locked_out_json(token_login(user.username, PASSWORD))
    response, client = page_login(user.username, PASSWORD)
    assert response.status_code == 429 and not logged_in(client)


def test_a_successful_login_forgets_earlier_failures(clock):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        token_login(user.username, WRONG)
    assert token_login(user.username, PASSWORD).status_code == 200

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert token_login(user.username, WRONG).status_code == 400
    assert token_login(user.username, PASSWORD).status_code == 200


# --- behind reverse proxies ---------------------------------------------------------------------

PROXY = "10.9.9.9"  # the nearest proxy: every request's connection comes from it


def proxied_token_login(username: str, password: str, *, forwarded: str):
    return APIClient().post(
        TOKEN,
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_without_trusted_proxies_every_client_behind_a_proxy_shares_its_lockout(clock):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        proxied_token_login(user.username, WRONG, forwarded="203.0.113.7")
    assert_locked_out_json(proxied_token_login(user.username, PASSWORD, forwarded="198.51.100.1"))


def test_behind_one_trusted_proxy_a_lockout_holds_only_the_address_the_proxy_saw(clock, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    user = UserFactory()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        # The attacker writes a new address of its own each time; the proxy appends the real one.
        proxied_token_login(user.username, WRONG, forwarded=f"192.0.2.{attempt}, 203.0.113.7")
    assert_locked_out_json(proxied_token_login(user.username, PASSWORD, forwarded="203.0.113.7"))
    assert proxied_token_login(user.username, PASSWORD, forwarded="198.51.100.1").status_code == 200


def test_behind_two_trusted_proxies_the_client_is_the_second_address_from_the_right(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7 , 10.0.0.5")
    assert client_ip(request) == "203.0.113.7"
    # Fewer addresses than proxies (it came round them) or an address that does not parse: the
    # connection's address counts.
    assert client_ip(rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.7")) == PROXY
    assert client_ip(rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="junk, 10.0.0.5")) == PROXY
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == PROXY
