"""长辈版: the toggle is a plain form post (no JavaScript needed) that sets or clears a long-lived
cookie and goes back where it came from; the consumer's (and a visitor's) pages then carry
``class="elder"`` on <html>, a merchant's and a regulator's never do."""

import pytest

from core.web import ELDER_COOKIE, ELDER_MAX_AGE
from tests.cards import builders
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def consumer_client(client):
    sign_in(client, builders.consumer().user)
    return client


def elder_html(response) -> bool:
    return '<html lang="zh-hans" class="elder">' in response.content.decode()


def test_turning_it_on_sets_a_long_lived_cookie_and_goes_back(consumer_client):
    page = consumer_client.get("/c/cards/")
    assert page.status_code == 200 and not elder_html(page)
    assert 'data-testid="elder-toggle" aria-pressed="false"' in page.content.decode()

    response = consumer_client.post("/elder-mode/", {"on": "1", "next": "/c/cards/?page=1"})
    assert response.status_code == 302 and response["Location"] == "/c/cards/?page=1"
    cookie = response.cookies[ELDER_COOKIE]
    assert cookie.value == "1" and cookie["max-age"] == ELDER_MAX_AGE >= 365 * 24 * 3600
    assert cookie["httponly"] and cookie["samesite"] == "Lax"

    page = consumer_client.get("/c/cards/")
    assert elder_html(page)
    assert 'data-testid="elder-toggle" aria-pressed="true"' in page.content.decode()


def test_it_outlasts_the_session(consumer_client):
    consumer_client.post("/elder-mode/", {"on": "1", "next": "/c/cards/"})
    consumer_client.post("/logout/")
    login = consumer_client.get("/login/")
    assert elder_html(login)  # the visitor's page too: the log-in form in large text
    sign_in(consumer_client, builders.consumer().user)
    assert elder_html(consumer_client.get("/c/cards/"))


def test_turning_it_off_clears_the_cookie(consumer_client):
    consumer_client.post("/elder-mode/", {"on": "1", "next": "/c/cards/"})
    response = consumer_client.post("/elder-mode/", {"on": "0", "next": "/c/cards/"})
    assert response.status_code == 302
    assert response.cookies[ELDER_COOKIE].value == "" and response.cookies[ELDER_COOKIE]["max-age"] == 0
    assert not elder_html(consumer_client.get("/c/cards/"))


def test_it_goes_back_only_to_this_site_and_takes_only_a_post(consumer_client):
    response = consumer_client.post("/elder-mode/", {"on": "1", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert consumer_client.get("/elder-mode/").status_code == 405


def test_the_toggle_needs_the_csrf_token():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    sign_in(client, UserFactory(role="consumer"))
    assert client.post("/elder-mode/", {"on": "1"}).status_code == 403


@pytest.mark.parametrize("role", ["merchant", "regulator"])
def test_a_merchant_or_regulator_has_neither_the_toggle_nor_the_class(client, role):
    sign_in(client, builders.merchant().user if role == "merchant" else UserFactory(role=role))
    client.cookies[ELDER_COOKIE] = "1"
    page = client.get("/m/" if role == "merchant" else "/r/", follow=True)
    html = page.content.decode()
    assert 'class="elder"' not in html and "elder-toggle" not in html
