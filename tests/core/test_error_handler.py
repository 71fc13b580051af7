"""No malformed request gets a 500: each answers 400 (or its proper status) with a stable code."""

import json

import pytest

from escrow.models import Account
from escrow.services import account_open
from tests.conftest import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.harness")]


@pytest.fixture
def card_account():
    return account_open(kind=Account.Kind.CARD_ESCROW, name="card")


@pytest.fixture
def client(consumer):
    return client_for(consumer)


def _post(client, body, content_type="application/json", **headers):
    return client.generic("POST", "/harness/deposit", body, content_type=content_type, **headers)


MALFORMED = [
    ("not json", b"{amount: 5", "malformed_request"),
    ("truncated", b'{"amount": 5', "malformed_request"),
    ("invalid utf-8", b'{"amount": "\xff\xfe"}', "malformed_request"),
    ("NaN", b'{"account": 1, "amount": NaN}', "malformed_request"),
    ("Infinity", b'{"account": 1, "amount": Infinity}', "malformed_request"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "malformed_request"),
    ("empty body", b"", "invalid"),
    ("top-level list", b"[1, 2]", "invalid"),
    ("top-level string", b'"hello"', "invalid"),
    ("null", b"null", "invalid"),
    ("missing fields", b"{}", "invalid"),
    ("float fen", b'{"account": 1, "amount": 12.5}', "invalid"),
    ("whole float fen", b'{"account": 1, "amount": 12.0}', "invalid"),
    ("exponent fen", b'{"account": 1, "amount": 1e3}', "invalid"),
    ("huge float", b'{"account": 1, "amount": 1e999}', "invalid"),
    ("string fen", b'{"account": 1, "amount": "1200"}', "invalid"),
    ("boolean fen", b'{"account": 1, "amount": true}', "invalid"),
    ("negative fen", b'{"account": 1, "amount": -100}', "invalid"),
    ("zero fen", b'{"account": 1, "amount": 0}', "invalid"),
    ("huge integer", b'{"account": 1, "amount": 123456789012345678901234567890}', "invalid"),
    ("list fen", b'{"account": 1, "amount": [1]}', "invalid"),
    ("object fen", b'{"account": 1, "amount": {"fen": 1}}', "invalid"),
    ("huge id", b'{"account": 99999999999999999999999999, "amount": 1}', "invalid"),
    ("string id", b'{"account": "abc", "amount": 1}', "invalid"),
    ("overlong text", json.dumps({"account": 1, "amount": 1, "note": "x" * 1000}).encode(), "invalid"),
]


@pytest.mark.parametrize(("body", "code"), [(b, c) for _, b, c in MALFORMED], ids=[name for name, _, _ in MALFORMED])
def test_malformed_body_gets_400_with_a_code(client, body, code):
    response = _post(client, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == code
    assert isinstance(payload["detail"], str) and payload["detail"]
    assert isinstance(payload["errors"], dict) and payload["errors"]


def test_field_errors_name_the_field(client):
    payload = _post(client, b'{"account": 1, "amount": 12.5}').json()
    assert list(payload["errors"]) == ["amount"]


def test_wrong_content_type_gets_415(client):
    response = _post(client, b"amount=5", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_body_over_the_size_limit_gets_400(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = _post(client, json.dumps({"account": 1, "amount": 1, "note": "x" * 5000}).encode())
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_unknown_account_id_gets_404(client):
    response = _post(client, b'{"account": 987654321, "amount": 100}')
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


def test_valid_request_succeeds(client, card_account):
    response = _post(client, json.dumps({"account": card_account.id, "amount": 1200}).encode())
    assert response.status_code == 201
    assert response.json()["amount"] == 1200


def test_anonymous_request_gets_401_with_code(api):
    response = api.post("/harness/deposit", {"account": 1, "amount": 1}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_bad_token_gets_401_with_code(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api.post("/harness/deposit", {"account": 1, "amount": 1}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_wrong_method_gets_405_with_code(client):
    response = client.get("/harness/deposit")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_unknown_url_gets_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_errors_are_in_chinese_by_default_and_english_on_request(client):
    chinese = _post(client, b'{"account": 1, "amount": 12.5}').json()
    english = _post(client, b'{"account": 1, "amount": 12.5}', HTTP_ACCEPT_LANGUAGE="en").json()
    assert english["detail"] == "The request is invalid."
    assert chinese["detail"] != english["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese["detail"])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese["errors"]["amount"][0])


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/elsewhere", "/api/v1/cards/not-an-id/nothing"])
def test_unknown_api_url_gets_json_404_in_debug_mode_too(client, settings, path):
    settings.DEBUG = True  # Django would render its HTML "Page not found" here
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


def test_an_unknown_page_in_debug_mode_stays_a_page(client, settings):
    settings.DEBUG = True
    response = client.get("/c/no-such-page/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")
