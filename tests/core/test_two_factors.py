"""Regulators sign in with two factors (API.md, Additions v1.1): the password and the current code
of a TOTP authenticator (RFC 6238: 30 s, 6 digits, SHA-1), for an API token and on the login pages;
a regulator's session needs both and ends when idle. Consumers and merchants are unchanged."""

import base64
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import clock
from core.formatting import mask_account, mask_name, mask_phone
from core.models import User
from core.services import user_totp_set
from demo.seed import DEMO_TOTP_SECRET, REGULATOR
from tests.factories import PASSWORD, UserFactory, sign_in, totp_code

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
START = "2026-03-02 10:00 +0800"  # a whole minute: the start of a 30-second step


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def inspector(db):
    return UserFactory(role="regulator")


def token_call(user, **extra):
    body = {"username": user.username, "password": PASSWORD, **extra}
    return APIClient().post(TOKEN, body, format="json", HTTP_ACCEPT_LANGUAGE="en")


def code_for_secret(secret: str) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key)
    totp.time = clock.now().timestamp()
    return f"{totp.token():06d}"


# --- the token ---------------------------------------------------------------------------------------


def test_a_regulators_token_call_without_a_code_is_401_otp_required(inspector, frozen):
    response = token_call(inspector)
    assert response.status_code == 401 and response.json()["code"] == "otp_required"
    assert token_call(inspector, otp="").json()["code"] == "otp_required"
    assert not Token.objects.filter(user=inspector).exists()


@pytest.mark.parametrize("wrong", ["wrong", "12", "1234567", "12345a"])
def test_a_regulators_token_call_with_a_wrong_or_malformed_code_is_401_otp_invalid(inspector, frozen, wrong):
    response = token_call(inspector, otp=wrong)
    assert response.status_code == 401 and response.json()["code"] == "otp_invalid"
    assert response.json()["detail"]
    assert not Token.objects.filter(user=inspector).exists()


def test_a_code_of_another_time_is_401_otp_invalid(inspector, frozen):
    response = token_call(inspector, otp=totp_code(inspector, offset_steps=4))  # two minutes away
    assert response.status_code == 401 and response.json()["code"] == "otp_invalid"


def test_the_right_code_gets_the_token_which_reaches_the_regulators_api(inspector, frozen):
    response = token_call(inspector, otp=totp_code(inspector))
    assert response.status_code == 200, response.content
    key = response.json()["token"]
    assert Token.objects.get(key=key).user == inspector
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/regulator/ledger/verify").status_code == 200


def test_a_code_typed_with_a_space_is_taken(inspector, frozen):
    code = totp_code(inspector)
    assert token_call(inspector, otp=f"{code[:3]} {code[3:]}").status_code == 200


def test_a_code_is_taken_once_the_same_code_again_in_its_30_seconds_is_refused(inspector, frozen):
    code = totp_code(inspector)
    assert token_call(inspector, otp=code).status_code == 200
    frozen.shift(10)  # still the same step: the authenticator still shows this code
    replay = token_call(inspector, otp=code)
    assert replay.status_code == 401 and replay.json()["code"] == "otp_invalid"
    frozen.shift(30)  # the next step's code
    assert token_call(inspector, otp=totp_code(inspector)).status_code == 200


def test_a_phone_half_a_minute_off_still_signs_in(inspector, frozen):
    assert token_call(inspector, otp=totp_code(inspector, offset_steps=-1)).status_code == 200


def test_after_a_wrong_code_the_next_must_wait_a_second_then_the_right_one_passes(inspector, frozen):
    assert token_call(inspector, otp="000000" if totp_code(inspector) != "000000" else "111111").status_code == 401
    hurried = token_call(inspector, otp=totp_code(inspector))
    assert hurried.status_code == 429 and hurried.json()["code"] == "too_many_login_attempts"
    assert "wait 1 second " in hurried.json()["detail"]
    frozen.shift(1)
    assert token_call(inspector, otp=totp_code(inspector)).status_code == 200


@pytest.mark.usefixtures("login_throttling")
def test_wrong_codes_count_against_the_login_throttle(inspector, frozen, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert token_call(inspector, otp="999999" if totp_code(inspector) != "999999" else "888888").status_code in (
            401,
            429,
        )
        frozen.shift(60)  # past the authenticator's own slow-down
    last = token_call(inspector, otp="999999" if totp_code(inspector) != "999999" else "888888")
    assert last.status_code == 429 and last.json()["code"] == "too_many_login_attempts"
    frozen.shift(60)
    locked = token_call(inspector, otp=totp_code(inspector))  # the right password and code, locked out
    assert locked.status_code == 429
    frozen.shift(settings.AXES_COOLOFF_MINUTES * 60 + 1)
    assert token_call(inspector, otp=totp_code(inspector)).status_code == 200


def test_a_regulator_without_an_authenticator_is_told_an_operator_must_set_one(frozen):
    user = User.objects.create_user(username="old-inspector", password=PASSWORD, role="regulator")
    response = token_call(user, otp="123456")
    assert response.status_code == 401 and response.json()["code"] == "otp_required"
    assert "totp_reset" in response.json()["detail"]


@pytest.mark.parametrize("role", ["consumer", "merchant"])
def test_consumers_and_merchants_get_their_token_without_a_code(role):
    user = UserFactory(role=role)
    assert token_call(user).status_code == 200
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_the_schema_documents_otp_and_the_401_codes():
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/auth/token"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    otp = schema["components"]["schemas"][body]["properties"]["otp"]
    assert "otp_required" in otp["description"] and "otp_invalid" in otp["description"]
    assert "otp_required" in operation["responses"]["401"]["description"]


# --- the login pages ---------------------------------------------------------------------------------


def page() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def test_a_regulators_password_leads_to_the_code_page_without_logging_in(inspector, frozen):
    browser = page()
    response = browser.post("/login/", {"username": inspector.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login/code/"
    assert "_auth_user_id" not in browser.session
    assert browser.get("/r/")["Location"].startswith("/login/")
    code_page = browser.get("/login/code/").content.decode()
    assert 'autocomplete="one-time-code"' in code_page and inspector.username in code_page


def test_the_right_code_logs_the_regulator_in_verified_and_goes_where_asked(inspector, frozen):
    browser = page()
    browser.post("/login/?next=/r/complaints/", {"username": inspector.username, "password": PASSWORD})
    response = browser.post("/login/code/", {"code": totp_code(inspector)})
    assert response.status_code == 302 and response["Location"] == "/r/complaints/"
    assert browser.session["_auth_user_id"] == str(inspector.pk)
    assert browser.session[DEVICE_ID_SESSION_KEY] == TOTPDevice.objects.get(user=inspector).persistent_id
    assert browser.get("/r/complaints/").status_code == 200


def test_a_wrong_code_keeps_the_regulator_out_with_the_reason(inspector, frozen):
    browser = page()
    browser.post("/login/", {"username": inspector.username, "password": PASSWORD})
    response = browser.post("/login/code/", {"code": totp_code(inspector, offset_steps=6)})
    assert response.status_code == 200
    assert "The code is wrong or was already used" in response.content.decode()
    assert "_auth_user_id" not in browser.session
    frozen.shift(2)
    assert browser.post("/login/code/", {"code": totp_code(inspector)}, follow=True).redirect_chain[-1][0] == "/r/"


def test_the_code_page_waits_five_minutes_after_the_password(inspector, frozen):
    browser = page()
    browser.post("/login/", {"username": inspector.username, "password": PASSWORD})
    frozen.shift(301)
    response = browser.post("/login/code/", {"code": totp_code(inspector)}, follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert "The code was not entered in time" in response.content.decode()
    assert "_auth_user_id" not in browser.session


def test_the_code_page_without_a_password_first_sends_to_the_login_page(inspector):
    assert page().post("/login/code/", {"code": "123456"})["Location"] == "/login/"


def test_consumers_and_merchants_log_in_in_one_step():
    consumer = UserFactory(role="consumer")
    browser = page()
    response = browser.post("/login/", {"username": consumer.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert browser.session["_auth_user_id"] == str(consumer.pk)


def test_a_regulators_session_with_the_password_alone_is_ended_on_pages_and_the_api(inspector):
    browser = page()
    browser.force_login(inspector)  # any way of logging in that skipped the code
    response = browser.get("/r/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/r/"
    assert "_auth_user_id" not in browser.session
    api = APIClient()
    api.force_login(inspector)
    assert api.get("/api/v1/regulator/ledger/verify").status_code in (401, 403)
    assert "_auth_user_id" not in api.session


def test_a_verified_regulator_session_reaches_the_pages_and_the_api(inspector):
    assert sign_in(page(), inspector).get("/r/").status_code == 200
    assert sign_in(APIClient(), inspector).get("/api/v1/regulator/ledger/verify").status_code == 200


# --- idle sessions -----------------------------------------------------------------------------------


def test_a_regulators_session_ends_after_the_idle_minutes(inspector, frozen, settings):
    settings.REGULATOR_SESSION_IDLE_MINUTES = 30
    browser = sign_in(page(), inspector)
    assert browser.get("/r/").status_code == 200
    frozen.shift(timedelta(minutes=29))
    assert browser.get("/r/").status_code == 200  # activity: the half hour starts again
    frozen.shift(timedelta(minutes=29))
    assert browser.get("/r/rules/").status_code == 200
    frozen.shift(timedelta(minutes=30, seconds=1))
    response = browser.get("/r/", follow=True)
    assert response.redirect_chain[0][0] == "/login/?next=/r/"
    assert "signed out after 30 minutes without activity" in response.content.decode()
    assert "_auth_user_id" not in browser.session


def test_the_idle_minutes_come_from_the_environment_and_are_documented():
    from config import env as config_env

    assert "REGULATOR_SESSION_IDLE_MINUTES" in config_env.READ


@pytest.mark.parametrize("role", ["consumer", "merchant"])
def test_consumers_and_merchants_sessions_do_not_end_when_idle(role, frozen):
    from tests.cards import builders

    user = builders.consumer().user if role == "consumer" else builders.merchant().user
    browser = sign_in(page(), user)
    home = "/c/cards/" if role == "consumer" else "/m/"
    assert browser.get(home).status_code == 200
    frozen.shift(timedelta(hours=3))
    assert browser.get(home).status_code == 200


# --- createregulator and totp_reset ------------------------------------------------------------------


def secret_of_uri(uri: str) -> str:
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert (query["algorithm"], query["digits"], query["period"]) == (["SHA1"], ["6"], ["30"])
    return query["secret"][0]


def test_createregulator_without_a_secret_makes_one_and_prints_its_uri_once(monkeypatch, capsys, frozen):
    monkeypatch.setenv("REG_PASSWORD", "a-long-and-unusual-passphrase")
    call_command("createregulator", "inspector", "--password-from-env", "REG_PASSWORD")
    out = capsys.readouterr().out
    uris = re.findall(r"otpauth://totp/\S+", out)
    assert len(uris) == 1 and "inspector" in uris[0]
    user = User.objects.get(username="inspector")
    secret = secret_of_uri(uris[0])
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20  # 160 bits
    assert token_call_as("inspector", "a-long-and-unusual-passphrase", code_for_secret(secret)).status_code == 200
    assert TOTPDevice.objects.filter(user=user).count() == 1
    assert "otpauth://" not in repr(TOTPDevice.objects.get(user=user).__dict__)  # only its key is kept


def token_call_as(username: str, password: str, code: str):
    return APIClient().post(TOKEN, {"username": username, "password": password, "otp": code}, format="json")


def test_createregulator_takes_the_secret_from_the_environment_and_prints_no_uri(monkeypatch, capsys, frozen):
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    monkeypatch.setenv("REG_PASSWORD", "a-long-and-unusual-passphrase")
    monkeypatch.setenv("REG_TOTP", secret.lower()[:16] + " " + secret.lower()[16:])  # as apps show it
    call_command(
        "createregulator", "inspector", "--password-from-env", "REG_PASSWORD", "--totp-secret-from-env", "REG_TOTP"
    )
    out = capsys.readouterr().out
    assert "created regulator inspector" in out and "otpauth://" not in out
    assert token_call_as("inspector", "a-long-and-unusual-passphrase", code_for_secret(secret)).status_code == 200


@pytest.mark.parametrize(
    ("value", "reason"), [(None, "REG_TOTP is not set"), ("not base32!", "base32"), ("ABCD", "26")]
)
def test_createregulator_refuses_a_missing_or_bad_secret_and_creates_no_one(monkeypatch, value, reason):
    monkeypatch.setenv("REG_PASSWORD", "a-long-and-unusual-passphrase")
    if value is None:
        monkeypatch.delenv("REG_TOTP", raising=False)
    else:
        monkeypatch.setenv("REG_TOTP", value)
    with pytest.raises(CommandError, match=reason):
        call_command(
            "createregulator", "inspector", "--password-from-env", "REG_PASSWORD", "--totp-secret-from-env", "REG_TOTP"
        )
    assert not User.objects.filter(username="inspector").exists()


def test_totp_reset_gives_a_new_authenticator_and_the_old_codes_stop(inspector, capsys, frozen):
    old = totp_code(inspector)
    call_command("totp_reset", inspector.username)
    uri = re.findall(r"otpauth://totp/\S+", capsys.readouterr().out)[0]
    assert token_call(inspector, otp=old).json()["code"] == "otp_invalid"
    frozen.shift(2)
    assert token_call(inspector, otp=code_for_secret(secret_of_uri(uri))).status_code == 200


def test_totp_reset_is_for_regulators_only():
    consumer = UserFactory(role="consumer")
    with pytest.raises(CommandError, match="only regulators"):
        call_command("totp_reset", consumer.username)
    with pytest.raises(CommandError, match="no user"):
        call_command("totp_reset", "nobody")


# --- the demo's regulator ----------------------------------------------------------------------------


@pytest.fixture
def demo_regulator(db):
    user = UserFactory(username=REGULATOR, role="regulator")
    user_totp_set(user=user, secret=DEMO_TOTP_SECRET)
    return user


def test_in_debug_mode_the_login_page_shows_the_demo_regulators_authenticator(demo_regulator, settings):
    settings.DEBUG = True
    html = page().get("/login/").content.decode()
    assert 'data-testid="debug-login-hint"' in html and "<svg" in html
    uri = re.search(r'data-testid="debug-login-uri">([^<]+)<', html)[1].replace("&amp;", "&")
    assert secret_of_uri(uri) == DEMO_TOTP_SECRET
    assert re.search(r'data-qr-text="otpauth://totp/[^"]+"', html)


def test_without_debug_mode_the_login_page_shows_no_authenticator(demo_regulator, settings):
    settings.DEBUG = False
    html = page().get("/login/").content.decode()
    assert "debug-login-hint" not in html and "otpauth://" not in html and DEMO_TOTP_SECRET not in html


def test_a_regulator_named_like_the_demos_with_a_secret_of_its_own_is_never_shown(settings):
    UserFactory(username=REGULATOR, role="regulator")  # a random secret
    settings.DEBUG = True
    html = page().get("/login/").content.decode()
    assert "debug-login-hint" not in html and "otpauth://" not in html


def test_demo_totp_code_prints_the_code_the_token_call_takes(demo_regulator, capsys, frozen):
    call_command("demo_totp_code")
    code = capsys.readouterr().out.strip()
    assert re.fullmatch(r"\d{6}", code)
    assert token_call(demo_regulator, otp=code).status_code == 200


def test_demo_totp_code_refuses_without_the_demo():
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("demo_totp_code")


# --- masks -------------------------------------------------------------------------------------------


def test_phone_numbers_are_masked_to_the_first_three_and_last_four_digits():
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone(" 13812341234 ") == "138****1234"
    assert mask_phone("+8613812341234") == "+86138****1234"
    assert mask_phone("1234567") == "****4567" and mask_phone("1234") == "****" and mask_phone("") == ""
    assert mask_phone(None) == ""


def test_names_keep_their_first_character():
    assert (mask_name("张三"), mask_name("王小明"), mask_name("欧阳娜娜"), mask_name("李")) == (
        "张*",
        "王**",
        "欧***",
        "李*",
    )
    assert mask_name("") == "" and mask_name(None) == ""


def test_account_names_are_masked_without_their_length():
    assert mask_account("13812341234") == "138****1234"
    assert mask_account("consumer-001") == "c***" and mask_account("li") == "l***"
    assert mask_account("") == ""


def test_the_migration_revokes_regulators_tokens_issued_before_two_factors_and_keeps_the_others():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("core.migrations.0003_regulator_tokens_revoked")
    regulator, consumer = UserFactory(role="regulator"), UserFactory(role="consumer")
    Token.objects.create(user=regulator)
    kept = Token.objects.create(user=consumer)
    migration.revoke(apps, None)
    assert list(Token.objects.all()) == [kept]
