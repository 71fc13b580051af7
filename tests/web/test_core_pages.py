"""The pages' shared parts: log in and out, sign up, the role's start page, language, errors."""

import re

import pytest

from core.models import User
from core.services import user_totp_set
from merchants.models import Merchant
from tests.cards import builders
from tests.cards.builders import PASSWORD, license_number
from tests.factories import totp_code

pytestmark = pytest.mark.django_db


def test_anonymous_start_page_sends_to_login_which_has_labels_and_lang(client):
    response = client.get("/", follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0].startswith("/login/")
    assert '<html lang="zh-hans">' in html
    for field in ("id_username", "id_password"):
        assert f'for="{field}"' in html and f'id="{field}"' in html


@pytest.mark.parametrize(("role", "home"), [("consumer", "/c/cards/"), ("merchant", "/m/"), ("regulator", "/r/")])
def test_login_takes_each_role_to_its_own_start_page(client, role, home):
    user = {
        "consumer": lambda: builders.consumer().user,
        "merchant": lambda: builders.merchant().user,
        "regulator": lambda: User.objects.create_user(username="reg", password=PASSWORD, role="regulator"),
    }[role]()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD}, follow=True)
    if role == "regulator":  # the password, then the authenticator's code
        assert response.redirect_chain[-1][0] == "/login/code/"
        user_totp_set(user=user)
        response = client.post("/login/code/", {"code": totp_code(user)}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == home


def test_wrong_password_stays_on_login_with_an_error(client):
    builders.consumer()
    response = client.post("/login/", {"username": "nobody", "password": "wrong-password"})
    assert response.status_code == 200 and response.context["form"].non_field_errors()
    assert str(response.context["form"].non_field_errors()[0]) in response.content.decode()


def test_consumer_signup_logs_in_and_lands_on_cards(client):
    response = client.post(
        "/signup/consumer/",
        {"username": "lihua", "password": PASSWORD, "display_name": "李华", "phone": "13800001111"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/c/cards/"
    assert User.objects.get(username="lihua").role == "consumer"


def test_merchant_signup_checks_the_licence_number_through_the_service(client):
    data = {
        "username": "gym1",
        "password": PASSWORD,
        "name": "朝阳健身",
        "license_number": "91110105MA00000000",
        "category": "fitness",
        "district": "110105",
        "address": "朝阳路 1 号",
    }
    bad = client.post("/signup/merchant/", data)
    assert bad.status_code == 200 and not Merchant.objects.exists()
    assert "unified social credit code" in bad.content.decode() or "统一社会信用代码" in bad.content.decode()
    data["license_number"] = license_number(987654)
    good = client.post("/signup/merchant/", data, follow=True)
    assert good.redirect_chain[-1][0] == "/m/"
    assert Merchant.objects.get().district == "110105"


def test_logout_is_a_post_and_ends_the_session(client):
    consumer = builders.consumer()
    client.force_login(consumer.user)
    assert client.post("/logout/", follow=True).redirect_chain[-1][0].startswith("/login/")
    assert client.get("/c/cards/").status_code == 302


def test_language_switch_turns_the_pages_english(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"}, follow=True)
    html = response.content.decode()
    assert '<html lang="en">' in html and "Log in" in html


def test_a_missing_page_is_an_html_page_and_a_missing_api_path_is_json(client):
    page = client.get("/c/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["code"] == "not_found"


def test_another_roles_page_is_an_html_403(client):
    client.force_login(builders.consumer().user)
    response = client.get("/r/")
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")


def test_every_form_on_the_login_page_carries_a_csrf_token(client):
    html = client.get("/login/").content.decode()
    forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, flags=re.S)
    assert forms and all("csrfmiddlewaretoken" in form for form in forms)
